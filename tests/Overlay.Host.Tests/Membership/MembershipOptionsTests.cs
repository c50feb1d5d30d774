using Overlay.Host.Options;

namespace Overlay.Host.Tests.Membership;

/// <summary>The authorities option: each key well formed, and TLS links wherever it is set.</summary>
public sealed class MembershipOptionsTests
{
    private const string Key = "25c2977035e88052b16fb9f1fe40ab59751faa22636f92f110923de5aa838ab8";

    [Theory]
    [InlineData("https://127.0.0.1:7400", "not-a-key", "'not-a-key' is not a 64-hex-digit Ed25519 public key")]
    [InlineData("http://127.0.0.1:7400", Key, "needs TLS links")]
    public void Authorities_are_validated_naming_the_key(string url, string authority, string problem)
    {
        var options = new OverlayOptions();
        options.Link.Url = url;
        options.Network.Authorities.Add(authority);

        var result = new OverlayOptionsValidator().Validate(null, options);

        var failure = Assert.Single(result.Failures!, f => f.Contains("Overlay:Network:Authorities", StringComparison.Ordinal));
        Assert.Contains(problem, failure, StringComparison.Ordinal);
    }

    [Fact]
    public void An_authority_over_TLS_links_is_accepted()
    {
        var options = new OverlayOptions();
        options.Network.Authorities.Add(Key);

        Assert.True(new OverlayOptionsValidator().Validate(null, options).Succeeded);
    }
}
