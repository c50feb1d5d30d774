using System.Net;
using Overlay.Host.Link;

namespace Overlay.Host.Tests.Link;

public sealed class PeerAddressTests
{
    [Theory]
    [InlineData("203.0.113.7", "203.0.113.0/24")]
    [InlineData("203.0.113.250", "203.0.113.0/24")]
    [InlineData("::ffff:203.0.113.9", "203.0.113.0/24")]
    [InlineData("2001:db8:1234:56ff:1::1", "2001:db8:1234:5600::/56")]
    [InlineData("127.0.0.1", "127.0.0.1")]
    [InlineData("127.0.0.2", "127.0.0.2")]
    [InlineData("10.1.2.3", "10.1.2.3")]
    [InlineData("192.168.7.8", "192.168.7.8")]
    [InlineData("fd00::5", "fd00::5")]
    [InlineData("fe80::1", "fe80::1")]
    public void Public_addresses_key_on_their_block_and_private_ones_on_themselves(string address, string key) =>
        Assert.Equal(key, PeerAddress.FairnessKey(IPAddress.Parse(address)));

    [Fact]
    public void No_address_is_one_key() => Assert.Equal("unknown", PeerAddress.FairnessKey(null));

    [Theory]
    [InlineData("198.51.100.1", "198.51.0.0/16")]
    [InlineData("::ffff:198.51.7.1", "198.51.0.0/16")]
    [InlineData("2001:db8:ffff::1", "2001:db8::/32")]
    public void Diversity_blocks_are_a_slash_16_or_a_slash_32(string address, string block) =>
        Assert.Equal(block, PeerAddress.DiversityBlock(IPAddress.Parse(address)).ToString());

    [Theory]
    [InlineData("127.0.0.1", true)]
    [InlineData("::1", true)]
    [InlineData("172.31.255.255", true)]
    [InlineData("172.32.0.1", false)]
    [InlineData("100.64.0.1", true)]
    [InlineData("169.254.169.254", true)]
    [InlineData("8.8.8.8", false)]
    [InlineData("2606:4700::1111", false)]
    public void Non_public_ranges_are_recognised(string address, bool nonPublic) =>
        Assert.Equal(nonPublic, PeerAddress.IsNonPublic(IPAddress.Parse(address)));
}
