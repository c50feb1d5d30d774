using Overlay.Host.Options;

namespace Overlay.Host.Tests.Directory;

/// <summary>The new options are checked at start, with messages naming the key to change.</summary>
public sealed class DirectoryOptionsTests
{
    [Fact]
    public void Defaults_are_valid()
    {
        Assert.True(new OverlayOptionsValidator().Validate(null, new OverlayOptions()).Succeeded);
    }

    [Theory]
    [InlineData("127.0.0.1/8", "Overlay:Link:AllowedPeerNetworks")]
    [InlineData("localhost", "Overlay:Link:AllowedPeerNetworks")]
    [InlineData("10.0.0.0/33", "Overlay:Link:AllowedPeerNetworks")]
    public void A_network_that_is_no_cidr_is_refused(string network, string key)
    {
        var options = new OverlayOptions();
        options.Link.AllowedPeerNetworks.Add(network);
        options.Link.RefusedPeerNetworks.Add(network);

        var result = new OverlayOptionsValidator().Validate(null, options);

        Assert.True(result.Failed);
        Assert.Contains(result.Failures!, f => f.StartsWith(key, StringComparison.Ordinal) && f.Contains(network, StringComparison.Ordinal));
        Assert.Contains(result.Failures!, f => f.StartsWith("Overlay:Link:RefusedPeerNetworks", StringComparison.Ordinal));
    }

    [Fact]
    public void Limits_must_be_positive()
    {
        var options = new OverlayOptions();
        options.Directory.MaxPeersPerAddressBlock = 0;
        options.Directory.CallsPerSecondPerSource = 0;
        options.Directory.ProofCooldown = TimeSpan.FromSeconds(-1);

        var failures = new OverlayOptionsValidator().Validate(null, options).Failures!;

        Assert.Contains(failures, f => f.Contains("Overlay:Directory:MaxPeersPerAddressBlock", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.Contains("Overlay:Directory:CallsPerSecondPerSource", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.Contains("Overlay:Directory:ProofCooldown", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(0, 120, "Overlay:Directory:ProofCooldownInitial")]
    [InlineData(-1, 120, "Overlay:Directory:ProofCooldownInitial")]
    [InlineData(5, 0, "Overlay:Directory:ProofCooldown")]
    [InlineData(121, 120, "Overlay:Directory:ProofCooldownInitial")]
    [InlineData(5, 2 * 86_400, "Overlay:Directory:ProofCooldown")]
    public void The_proof_cooldown_starts_above_zero_and_within_its_cap(int initialSeconds, int capSeconds, string key)
    {
        var options = new OverlayOptions();
        options.Directory.ProofCooldownInitial = TimeSpan.FromSeconds(initialSeconds);
        options.Directory.ProofCooldown = TimeSpan.FromSeconds(capSeconds);

        var failures = new OverlayOptionsValidator().Validate(null, options).Failures!;

        Assert.Contains(failures, f => f.StartsWith(key + " ", StringComparison.Ordinal));
    }

    [Fact]
    public void An_initial_proof_cooldown_equal_to_its_cap_is_a_flat_cooldown_and_valid()
    {
        var options = new OverlayOptions();
        options.Directory.ProofCooldownInitial = options.Directory.ProofCooldown;

        Assert.True(new OverlayOptionsValidator().Validate(null, options).Succeeded);
    }

    [Theory]
    [InlineData("http://seed")]
    [InlineData("http://seed:7400/join")]
    [InlineData("http://seed:7400/?x=1")]
    public void Seeds_and_the_advertised_url_must_be_scheme_host_port(string url)
    {
        var options = new OverlayOptions();
        options.Directory.Seeds.Add(url);
        options.Link.AdvertisedUrl = url;

        var failures = new OverlayOptionsValidator().Validate(null, options).Failures!;

        Assert.Contains(failures, f => f.StartsWith("Overlay:Directory:Seeds", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("Overlay:Link:AdvertisedUrl", StringComparison.Ordinal));
    }
}
