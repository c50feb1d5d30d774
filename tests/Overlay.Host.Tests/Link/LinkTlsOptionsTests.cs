using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Overlay.Host.Link.Tls;
using Overlay.Host.Options;
using Overlay.Identity;
using Overlay.Links;

namespace Overlay.Host.Tests.Link;

/// <summary>The link certificate's rotation, on a fake clock, and the TLS options' validation.</summary>
public sealed class LinkTlsOptionsTests
{
    private static readonly TimeSpan Skew = TimeSpan.FromMinutes(5);

    [Fact]
    public void The_certificate_rotates_on_schedule_and_each_one_outlives_its_successor_s_issue()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 6, 1, 0, 0, 0, TimeSpan.Zero));
        using var identity = NodeIdentity.Create();
        var rotation = TimeSpan.FromDays(1);
        using var issuer = new LinkCertificateIssuer(identity, rotation, time, NullLogger.Instance);

        var first = issuer.Current;
        Assert.Same(first, issuer.Current);
        Assert.Equal(LinkCertificateError.None, LinkCertificate.Verify(first.Certificate, identity.Id, time.GetUtcNow(), Skew, out _));

        time.Advance(rotation - TimeSpan.FromSeconds(1));
        Assert.Same(first, issuer.Current);

        time.Advance(TimeSpan.FromSeconds(1));
        var second = issuer.Current;
        Assert.NotSame(first, second);
        Assert.False(first.Certificate.GetPublicKey().AsSpan().SequenceEqual(second.Certificate.GetPublicKey()), "a rotation must use a fresh key");
        // Overlap: a connection made with the first just before the rotation stays valid for another rotation period.
        Assert.Equal(LinkCertificateError.None, LinkCertificate.Verify(first.Certificate, identity.Id, time.GetUtcNow() + rotation - Skew, Skew, out _));
        Assert.Equal(LinkCertificateError.Expired, LinkCertificate.Verify(first.Certificate, identity.Id, time.GetUtcNow() + rotation + TimeSpan.FromHours(1), Skew, out _));
        Assert.Equal(LinkCertificateError.None, LinkCertificate.Verify(second.Certificate, identity.Id, time.GetUtcNow(), Skew, out _));
    }

    [Theory]
    [InlineData("https://127.0.0.1:7400", "http://node.example:7400", "Overlay:Link:AdvertisedUrl")]
    [InlineData("http://127.0.0.1:7400", "https://node.example:7400", "Overlay:Link:AdvertisedUrl")]
    public void An_advertised_url_of_another_scheme_is_refused(string url, string advertised, string key)
    {
        var options = new OverlayOptions();
        options.Link.Url = url;
        options.Link.AdvertisedUrl = advertised;

        var result = new OverlayOptionsValidator().Validate(null, options);

        Assert.Contains(result.Failures!, f => f.StartsWith(key, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("https://0.0.0.0:7402")]
    [InlineData("http://0.0.0.0:7402/health")]
    [InlineData("not a url")]
    public void The_health_only_listener_must_be_a_plaintext_http_url(string healthUrl)
    {
        var options = new OverlayOptions();
        options.Link.HealthUrl = healthUrl;

        var result = new OverlayOptionsValidator().Validate(null, options);

        Assert.Contains(result.Failures!, f => f.StartsWith("Overlay:Link:HealthUrl", StringComparison.Ordinal));
    }

    [Fact]
    public void Links_default_to_TLS()
    {
        var options = new OverlayOptions();

        Assert.True(options.Link.UsesTls);
        Assert.Null(options.Link.HealthUrl);
        Assert.False(new OverlayOptionsValidator().Validate(null, options).Failed);
    }
}
