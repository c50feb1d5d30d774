using Overlay.Client;

namespace Overlay.Control.Tests.Applications;

/// <summary>The overlay host name: a node id in one DNS label, one name per id.</summary>
public sealed class OverlayHostNameTests
{
    private const string Id = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    [Fact]
    public void A_node_id_fits_one_DNS_label_and_reads_back()
    {
        var name = OverlayHostName.Format(Id, "web");
        var label = name.Split('.')[1];
        Assert.Equal(OverlayHostName.NodeLabelLength, label.Length);
        Assert.True(label.Length <= 63);
        Assert.Matches("^[a-z2-7]+$", label);
        Assert.Equal("aaisem2ekvthpcezvk54zxpo74abcirtirkwm54itgvlxtg5537q", label); // RFC 4648 base32 of the id, lower case, unpadded

        Assert.True(OverlayHostName.TryParse(name.ToUpperInvariant() + ".", out var id, out var service, out var problem), problem);
        Assert.Equal(Id, id);
        Assert.Equal("WEB", service);
    }

    [Theory]
    [InlineData("example.com")]
    [InlineData("web.overlay")]
    [InlineData("a.web.aaisem2ekvthpcezvk54zxpo74abcirtirkwm54itgvlxtg5537q.overlay")]
    [InlineData("web.aaisem2ekvthpcezvk54zxpo74abcirtirkwm54itgvlxtg5537r.overlay")] // a bit beyond the id: another name for it
    [InlineData("web.aaisem2ekvthpcezvk54zxpo74abcirtirkwm54itgvlxtg5537.overlay")]
    [InlineData("web.aaisem2ekvthpcezvk54zxpo74abcirtirkwm54itgvlxtg5517q.overlay")] // 1 is not in the alphabet
    [InlineData(".aaisem2ekvthpcezvk54zxpo74abcirtirkwm54itgvlxtg5537q.overlay")]
    public void Anything_else_is_refused_with_the_reason(string host)
    {
        Assert.False(OverlayHostName.TryParse(host, out _, out _, out var problem));
        Assert.False(string.IsNullOrEmpty(problem));
    }
}
