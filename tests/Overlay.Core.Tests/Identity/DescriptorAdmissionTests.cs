using System.Text;
using Overlay.Identity;
using Overlay.Onion;
using Overlay.Protocol;

namespace Overlay.Tests.Identity;

/// <summary>
/// What a descriptor from a hostile peer cannot get past admission: endpoints other than
/// scheme://host:port, onion keys no header can be built to, and work before the cheap checks.
/// </summary>
public sealed class DescriptorAdmissionTests : IDisposable
{
    private static readonly DateTimeOffset T0 = RawDescriptor.T0;
    private static readonly TimeSpan Skew = TimeSpan.FromMinutes(5);

    private readonly NodeIdentity _identity = NodeIdentity.Create();
    private readonly OnionKey _onionKey = OnionKey.Create(7, T0.AddHours(-1), T0.AddDays(1));

    public static TheoryData<string> LowOrderPoints() =>
    [
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ];

    public static TheoryData<string> AtLeastTheFieldPrime() =>
    [
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p (encodes 0)
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p + 1 (encodes 1)
        "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // 2^255 - 1
    ];

    public void Dispose()
    {
        _onionKey.Dispose();
        _identity.Dispose();
    }

    [Theory]
    [InlineData("http://node.example:7400/admin")]
    [InlineData("http://node.example:7400/?q=1")]
    [InlineData("http://node.example:7400?q=1")]
    [InlineData("http://node.example:7400/#top")]
    [InlineData("http://node.example:7400#top")]
    [InlineData("http://node.example/")]
    [InlineData("https://node.example")]
    [InlineData("http://node.example:/")]
    [InlineData("http://node.example:0/")]
    [InlineData("http://node.example:70000/")]
    [InlineData("http://node.example:7400\\admin")]
    [InlineData("http://user@node.example:7400/")]
    [InlineData("http://[::1]/")]
    public void An_endpoint_that_is_not_scheme_host_port_is_refused(string endpoint)
    {
        var raw = new RawDescriptor(_identity, _onionKey) { Endpoint = Encoding.UTF8.GetBytes(endpoint) };

        Assert.Equal(DescriptorError.InvalidEndpoint, NodeDescriptor.TryParse(raw.Encode(), out var descriptor));
        Assert.Null(descriptor);
    }

    [Theory]
    [InlineData("http://node.example:7400/admin")]
    [InlineData("http://node.example:7400/?q=1")]
    [InlineData("http://node.example/")]
    public void Create_refuses_an_endpoint_that_is_not_scheme_host_port(string endpoint)
    {
        var error = Assert.Throws<ArgumentException>(() => NodeDescriptor.Create(_identity, _onionKey, new Uri(endpoint), NetworkParameters.Default, T0));
        Assert.Contains("scheme://host:port", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("http://node.example:7400", "http://node.example:7400/")]
    [InlineData("https://node.example:443/", "https://node.example:443/")]
    [InlineData("http://10.1.2.3:80", "http://10.1.2.3:80/")]
    [InlineData("http://[::1]:7400/", "http://[::1]:7400/")]
    public void A_scheme_host_port_endpoint_is_written_with_its_port(string endpoint, string written)
    {
        var descriptor = NodeDescriptor.Create(_identity, _onionKey, new Uri(endpoint), NetworkParameters.Default, T0);

        var encoded = Encoding.UTF8.GetString(descriptor.Encoded.Span);
        Assert.Contains(written, encoded, StringComparison.Ordinal);
        Assert.Equal(new Uri(endpoint), descriptor.Endpoint);
        Assert.Equal(DescriptorError.None, NodeDescriptor.TryParse(descriptor.Encoded.Span, out _));
    }

    [Theory]
    [MemberData(nameof(LowOrderPoints))]
    public void A_signed_low_order_onion_key_is_refused(string point)
    {
        var raw = new RawDescriptor(_identity, _onionKey) { OnionKey = Convert.FromHexString(point) };

        Assert.Equal(DescriptorError.LowOrderOnionKey, NodeDescriptor.TryParse(raw.Encode(), out var descriptor));
        Assert.Null(descriptor);
        Assert.False(NodeDescriptor.IsUsableOnionKey(Convert.FromHexString(point)));
    }

    [Theory]
    [MemberData(nameof(LowOrderPoints))]
    public void No_header_can_be_built_to_a_low_order_key(string point)
    {
        // Why the list matters: each of these points fails the header build for any route through it.
        var builder = new OnionHeaderBuilder(NetworkParameters.Default);
        var header = new byte[builder.HeaderSize];

        Assert.Throws<ArgumentException>(() => builder.Build([new RouteHop(_identity.Id, 7, Convert.FromHexString(point))], TunnelMode.Duplex, DeadlineClass.Seconds30, header));
        builder.Build([new RouteHop(_identity.Id, 7, _onionKey.PublicKey.ToArray())], TunnelMode.Duplex, DeadlineClass.Seconds30, header).Dispose();
        Assert.True(NodeDescriptor.IsUsableOnionKey(_onionKey.PublicKey));
    }

    [Theory]
    [MemberData(nameof(AtLeastTheFieldPrime))]
    public void A_signed_onion_key_not_below_the_field_prime_is_non_canonical(string key)
    {
        var raw = new RawDescriptor(_identity, _onionKey) { OnionKey = Convert.FromHexString(key) };

        Assert.Equal(DescriptorError.NonCanonicalOnionKey, NodeDescriptor.TryParse(raw.Encode(), out var descriptor));
        Assert.Null(descriptor);
    }

    [Fact]
    public void Field_checks_come_before_the_signature()
    {
        // A forged signature on a descriptor that fails a cheap check is refused for the cheap reason:
        // the signature was never verified.
        var raw = new RawDescriptor(_identity, _onionKey) { Endpoint = "http://10.0.0.1:7400/x"u8.ToArray() };
        var encoded = raw.Encode();
        encoded[^1] ^= 1;
        Assert.Equal(DescriptorError.InvalidEndpoint, NodeDescriptor.TryParse(encoded, out _));

        raw = new RawDescriptor(_identity, _onionKey) { OnionKey = Convert.FromHexString("0100000000000000000000000000000000000000000000000000000000000000") };
        encoded = raw.Encode();
        encoded[^1] ^= 1;
        Assert.Equal(DescriptorError.LowOrderOnionKey, NodeDescriptor.TryParse(encoded, out _));
    }

    [Fact]
    public void Network_and_times_are_checked_before_the_signature_when_the_network_is_given()
    {
        var raw = new RawDescriptor(_identity, _onionKey) { CellSize = 2048 };
        var forged = raw.Encode();
        forged[^1] ^= 1;
        Assert.Equal(DescriptorError.NetworkMismatch, NodeDescriptor.TryParse(forged, NetworkParameters.Default, T0, Skew, out var descriptor));
        Assert.Null(descriptor);

        raw = new RawDescriptor(_identity, _onionKey) { PublishedAt = T0.AddHours(1).ToUnixTimeSeconds() };
        forged = raw.Encode();
        forged[^1] ^= 1;
        Assert.Equal(DescriptorError.NotYetValid, NodeDescriptor.TryParse(forged, NetworkParameters.Default, T0, Skew, out _));

        // Everything in order but the signature: the signature is what fails.
        forged = new RawDescriptor(_identity, _onionKey).Encode();
        forged[^1] ^= 1;
        Assert.Equal(DescriptorError.BadSignature, NodeDescriptor.TryParse(forged, NetworkParameters.Default, T0, Skew, out _));

        var valid = new RawDescriptor(_identity, _onionKey).Encode();
        Assert.Equal(DescriptorError.None, NodeDescriptor.TryParse(valid, NetworkParameters.Default, T0, Skew, out descriptor));
        Assert.Equal(_identity.Id, descriptor!.Id);
    }
}
