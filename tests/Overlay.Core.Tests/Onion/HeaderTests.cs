using Overlay.Crypto;
using Overlay.Onion;
using Overlay.Protocol;
using Overlay.Tests.Support;

namespace Overlay.Tests.Onion;

/// <summary>
/// The header's shape (guarantees 1 and 2 of docs/protocol.md): one header carries what every hop needs, every hop
/// receives the same number of bytes, and each learns only its successor.
/// </summary>
public sealed class HeaderTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(8)]
    [InlineData(32)]
    [InlineData(126)]
    [InlineData(254)]
    public void The_header_size_is_fixed_by_MaxRelays_alone(int maxRelays)
    {
        var parameters = new NetworkParameters { MaxRelays = maxRelays, CellSize = 16384 };
        using var ring = new OnionKeyRing();

        var size = OnionHeader.SizeFor(parameters);

        Assert.Equal(37 + ((maxRelays + 1) * 128) + 16, size);
        Assert.Equal(size, new OnionHeaderBuilder(parameters).HeaderSize);
        Assert.Equal(size, new OnionHeaderProcessor(parameters, ring).HeaderSize);
    }

    public static TheoryData<int, int> Routes() => new()
    {
        { 0, 32 }, { 1, 32 }, { 2, 32 }, { 8, 32 }, { 31, 32 }, { 32, 32 }, { 126, 126 },
    };

    [Theory]
    [MemberData(nameof(Routes))]
    public void Every_hop_receives_a_header_of_the_same_size_that_reveals_no_structure(int relays, int maxRelays)
    {
        var parameters = new NetworkParameters { MaxRelays = maxRelays };
        var size = OnionHeader.SizeFor(parameters);
        using var tunnel = InMemoryTunnel.Open(parameters, relays, seed: 300 + relays);

        var headers = Enumerable.Range(1, relays + 1).Select(tunnel.HeaderReceivedBy).ToArray();

        Assert.All(headers, h => Assert.Equal(size, h.Length));
        Assert.All(headers, h => Assert.Equal(OnionHeader.Version, h[HeaderFields.Version]));
        // Fresh alpha and MAC at every hop, and no slot of the routing block left in the clear as
        // zeros (which would show how many slots the route used).
        Assert.Equal(headers.Length, headers.Select(h => Convert.ToHexString(h, HeaderFields.AlphaStart, 32)).Distinct().Count());
        Assert.Equal(headers.Length, headers.Select(h => Convert.ToHexString(h, size - 16, 16)).Distinct().Count());
        foreach (var header in headers)
        {
            var routing = header.AsSpan(HeaderFields.RoutingStart, (maxRelays + 1) * 128);
            for (var slot = 0; slot < maxRelays + 1; slot++)
            {
                Assert.True(routing.Slice(slot * 128, 128).IndexOfAnyExcept((byte)0) >= 0, $"slot {slot} is all zeros");
            }
        }
    }

    /// <summary>
    /// What the destination reads after removing its layer: its slot, then padding and filler. Zeros
    /// there (rather than random padding) would tell it how many hops came before it.
    /// </summary>
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(31)]
    public void The_destination_sees_random_bytes_after_its_own_slot(int relays)
    {
        var parameters = NetworkParameters.Default;
        using var tunnel = InMemoryTunnel.Open(parameters, relays, seed: 360 + relays);
        var header = tunnel.HeaderReceivedBy(relays + 1);
        var slots = parameters.MaxRelays + 1;
        var routing = header.AsSpan(HeaderFields.RoutingStart, slots * 128).ToArray();

        using (var stream = new AesCtr(tunnel.OriginKeys.Hops[relays].HeaderStream))
        {
            stream.Xor(0, routing);
        }

        Assert.Equal(2, routing[0]); // the deliver command: the decryption is right
        for (var slot = 1; slot < slots; slot++)
        {
            Assert.True(routing.AsSpan(slot * 128, 128).IndexOfAnyExcept((byte)0) >= 0, $"slot {slot} is zeros");
        }
    }

    [Theory]
    [InlineData(0, TunnelMode.Duplex)]
    [InlineData(5, TunnelMode.Duplex)]
    [InlineData(5, TunnelMode.OneWay)]
    public void Each_hop_learns_its_successor_and_the_deadline_and_only_the_destination_learns_the_mode(int relays, TunnelMode mode)
    {
        var parameters = NetworkParameters.Default;
        using var tunnel = InMemoryTunnel.Open(parameters, relays, seed: 310 + relays, mode: mode, deadline: DeadlineClass.Minutes15);

        for (var hop = 1; hop <= relays; hop++)
        {
            var view = tunnel.HopViews[hop - 1];
            Assert.Equal(HeaderOutcome.Relay, view.Outcome);
            Assert.Equal(tunnel.NodeAt(hop + 1).Id, view.NextHop);
            Assert.Equal(default, view.Mode);
        }

        var destination = tunnel.HopViews[relays];
        Assert.Equal(HeaderOutcome.Deliver, destination.Outcome);
        Assert.Equal(mode, destination.Mode);
        Assert.True(destination.NextHop.IsNone);
        Assert.All(tunnel.HopViews, v => Assert.Equal(DeadlineClass.Minutes15, v.Deadline));
        Assert.All(tunnel.HopViews, v => Assert.Equal(1u, v.Epoch));
        Assert.All(tunnel.HopViews, v => Assert.True(v.SealedTraceContext.IsEmpty));
    }

    [Fact]
    public void A_sealed_trace_context_reaches_only_its_own_hop()
    {
        const int relays = 4;
        var contexts = new byte[(relays + 1) * 32];
        new Random(320).NextBytes(contexts);

        using var tunnel = InMemoryTunnel.Open(NetworkParameters.Default, relays, seed: 321, sealedTraceContexts: contexts);

        for (var hop = 1; hop <= relays + 1; hop++)
        {
            Assert.Equal(contexts.AsSpan((hop - 1) * 32, 32), tunnel.HopViews[hop - 1].SealedTraceContext.Span);
        }
    }

    [Fact]
    public void A_hop_whose_sealed_trace_context_is_all_zero_gets_none()
    {
        const int relays = 3;
        var contexts = new byte[(relays + 1) * 32];
        new Random(322).NextBytes(contexts.AsSpan(32, 32));

        using var tunnel = InMemoryTunnel.Open(NetworkParameters.Default, relays, seed: 323, sealedTraceContexts: contexts);

        Assert.Equal(contexts.AsSpan(32, 32), tunnel.HopViews[1].SealedTraceContext.Span);
        Assert.All([tunnel.HopViews[0], tunnel.HopViews[2], tunnel.HopViews[3]], v => Assert.True(v.SealedTraceContext.IsEmpty));
    }

    [Fact]
    public void The_origin_and_every_hop_derive_the_same_per_hop_keys()
    {
        const int relays = 3;
        var parameters = NetworkParameters.Default;
        using var network = new TestNetwork(parameters, relays + 1, seed: 330);
        var builder = new OnionHeaderBuilder(parameters, new SeededOnionRandom(331));
        var header = new byte[builder.HeaderSize];
        using var origin = builder.Build(network.Route(relays), TunnelMode.Duplex, DeadlineClass.Seconds30, header);
        var next = new byte[header.Length];

        for (var hop = 1; hop <= relays + 1; hop++)
        {
            using var result = network.Nodes[hop - 1].Processor.Process(header, next);
            using var keys = result.TakeKeys();
            Assert.Equal(Purposes(origin.Hops[hop - 1]), Purposes(keys));
            Assert.Equal(origin.Hops[hop - 1].ReplayTag, keys.ReplayTag);
            (header, next) = (next, header);
        }
    }

    [Fact]
    public void Per_tunnel_keys_differ_by_purpose_direction_hop_and_tunnel()
    {
        var parameters = NetworkParameters.Default;
        using var network = new TestNetwork(parameters, 3, seed: 340);
        using var first = InMemoryTunnel.Open(parameters, 2, seed: 341, network);
        using var second = InMemoryTunnel.Open(parameters, 2, seed: 342, network);

        var all = first.OriginKeys.Hops.Concat(second.OriginKeys.Hops).SelectMany(Purposes).ToArray();

        Assert.Equal(2 * 3 * 8, all.Length);
        Assert.Equal(all.Length, all.Distinct().Count());
    }

    [Fact]
    public void The_builder_refuses_routes_and_keys_it_cannot_build()
    {
        var parameters = new NetworkParameters { MaxRelays = 4 };
        using var network = new TestNetwork(parameters, 6, seed: 350);
        var builder = new OnionHeaderBuilder(parameters, new SeededOnionRandom(351));
        var header = new byte[builder.HeaderSize];
        var good = network.Route(2);
        var topBit = good.ToArray();
        var key = topBit[1].OnionPublicKey.ToArray();
        key[31] |= 0x80;
        topBit[1] = topBit[1] with { OnionPublicKey = key };
        var lowOrder = good.ToArray();
        lowOrder[2] = lowOrder[2] with { OnionPublicKey = new byte[32] };

        Assert.Throws<ArgumentException>(() => builder.Build([], TunnelMode.Duplex, DeadlineClass.Seconds5, header));
        Assert.Throws<ArgumentException>(() => builder.Build(network.Route(5), TunnelMode.Duplex, DeadlineClass.Seconds5, header));
        Assert.Throws<ArgumentException>(() => builder.Build(good, TunnelMode.Duplex, DeadlineClass.Seconds5, new byte[header.Length - 1]));
        Assert.Throws<ArgumentException>(() => builder.Build(good, TunnelMode.ReplyBlock, DeadlineClass.Seconds5, header));
        Assert.Throws<ArgumentException>(() => builder.Build(good, TunnelMode.Duplex, (DeadlineClass)8, header));
        Assert.Throws<ArgumentException>(() => builder.Build(good, TunnelMode.Duplex, DeadlineClass.Seconds5, header, new byte[32]));
        Assert.Throws<ArgumentException>(() => builder.Build(topBit, TunnelMode.Duplex, DeadlineClass.Seconds5, header));
        Assert.Throws<ArgumentException>(() => builder.Build(lowOrder, TunnelMode.Duplex, DeadlineClass.Seconds5, header));
        using var full = builder.Build(network.Route(4), TunnelMode.Duplex, DeadlineClass.Seconds5, header);
        Assert.Equal(4, full.RelayCount);
    }

    private static string[] Purposes(HopKeys keys) =>
    [
        Convert.ToHexString(keys.HeaderMac), Convert.ToHexString(keys.HeaderStream),
        Convert.ToHexString(keys.ForwardLayer), Convert.ToHexString(keys.BackwardLayer),
        Convert.ToHexString(keys.ForwardMac), Convert.ToHexString(keys.ForwardSeal),
        Convert.ToHexString(keys.BackwardSeal), Convert.ToHexString(keys.Trace),
    ];
}
