using System.Buffers.Binary;
using Overlay.Errors;
using Overlay.Onion;
using Overlay.Protocol;
using Overlay.Tests.Support;

namespace Overlay.Tests.Onion;

/// <summary>Typed rejections for hostile or stale headers (guarantees 4 and 9 of docs/protocol.md): never an exception, never a cache entry.</summary>
public sealed class HeaderRejectionTests
{
    private static readonly NetworkParameters Parameters = NetworkParameters.Default;

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4)]
    public void The_same_header_twice_at_a_hop_is_replayed(int hop)
    {
        using var tunnel = InMemoryTunnel.Open(Parameters, 3, seed: 100 + hop);
        var node = tunnel.NodeAt(hop);
        Assert.Equal(1, node.ReplayCache.Count);

        using var again = node.Processor.Process(tunnel.HeaderReceivedBy(hop), new byte[OnionHeader.SizeFor(Parameters)]);

        Assert.Equal(HeaderOutcome.Rejected, again.Outcome);
        Assert.Equal(TunnelErrorKind.Replayed, again.Rejection);
        Assert.Equal(1, node.ReplayCache.Count);
    }

    [Fact]
    public void A_second_tunnel_over_the_same_route_is_not_a_replay()
    {
        using var network = new TestNetwork(Parameters, 3, seed: 110);
        using var first = InMemoryTunnel.Open(Parameters, 2, seed: 111, network);
        using var second = InMemoryTunnel.Open(Parameters, 2, seed: 112, network);

        Assert.All(network.Nodes, n => Assert.Equal(2, n.ReplayCache.Count));
    }

    [Fact]
    public void A_header_for_an_epoch_the_hop_does_not_hold_is_unknown_epoch()
    {
        using var network = new TestNetwork(Parameters, 2, seed: 120, epoch: 7);
        var header = Build(network, 1, seed: 121);
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(HeaderFields.EpochStart), 8);

        using var result = network.Nodes[0].Processor.Process(header, new byte[header.Length]);

        Assert.Equal(TunnelErrorKind.UnknownEpoch, result.Rejection);
    }

    [Fact]
    public void Rotation_keeps_old_headers_valid_until_the_old_epoch_is_retired()
    {
        using var network = new TestNetwork(Parameters, 1, seed: 130, epoch: 1);
        var node = network.Nodes[0];
        var inFlight = Build(network, 0, seed: 131);
        var lateForEpoch1 = Build(network, 0, seed: 132);
        node.AddEpoch(2);
        var forEpoch2 = Build(network, 0, seed: 133);
        var next = new byte[inFlight.Length];

        using (var overlap = node.Processor.Process(inFlight, next))
        {
            Assert.Equal(HeaderOutcome.Deliver, overlap.Outcome);
            Assert.Equal(1u, overlap.Epoch);
        }

        Assert.True(node.Ring.Retire(1));
        using var retired = node.Processor.Process(lateForEpoch1, next);
        using var current = node.Processor.Process(forEpoch2, next);

        Assert.Equal(TunnelErrorKind.UnknownEpoch, retired.Rejection);
        Assert.Equal(HeaderOutcome.Deliver, current.Outcome);
        Assert.Equal(2u, current.Epoch);
        Assert.False(node.Ring.Retire(1));
    }

    [Fact]
    public void A_header_built_before_its_key_was_retired_is_unknown_epoch()
    {
        using var network = new TestNetwork(Parameters, 2, seed: 140);
        var header = Build(network, 1, seed: 141);
        Assert.True(network.Nodes[0].Ring.Retire(1));

        using var result = network.Nodes[0].Processor.Process(header, new byte[header.Length]);

        Assert.Equal(TunnelErrorKind.UnknownEpoch, result.Rejection);
    }

    [Fact]
    public void A_key_disposed_while_still_in_a_snapshot_is_unknown_epoch_not_an_exception()
    {
        // Retire disposes the key; a processor that took the ring's snapshot just before must not throw.
        using var network = new TestNetwork(Parameters, 2, seed: 150);
        var header = Build(network, 1, seed: 151);
        network.Nodes[0].Ring.Current!.Key.Dispose();

        using var result = network.Nodes[0].Processor.Process(header, new byte[header.Length]);

        Assert.Equal(TunnelErrorKind.UnknownEpoch, result.Rejection);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(2)]
    [InlineData(0x81)]
    [InlineData(0xff)]
    public void An_unsupported_version_is_refused_before_anything_else(byte version)
    {
        using var network = new TestNetwork(Parameters, 2, seed: 160);
        var header = Build(network, 1, seed: 161);
        header[HeaderFields.Version] = version;

        using var result = network.Nodes[0].Processor.Process(header, new byte[header.Length]);

        Assert.Equal(TunnelErrorKind.UnsupportedVersion, result.Rejection);
        Assert.Equal(0, network.Nodes[0].ReplayCache.Count);
    }

    [Theory]
    [InlineData(0, false)]
    [InlineData(1, false)]
    [InlineData(-1, true)]
    [InlineData(1, true)]
    [InlineData(128, true)]
    public void A_header_of_the_wrong_length_is_malformed(int length, bool relativeToRightSize)
    {
        using var network = new TestNetwork(Parameters, 2, seed: 170);
        var genuine = Build(network, 1, seed: 171);
        length = relativeToRightSize ? genuine.Length + length : length;
        var header = new byte[length];
        genuine.AsSpan(0, Math.Min(length, genuine.Length)).CopyTo(header);

        using var result = network.Nodes[0].Processor.Process(header, new byte[genuine.Length]);

        Assert.Equal(HeaderOutcome.Rejected, result.Outcome);
        Assert.Equal(TunnelErrorKind.Malformed, result.Rejection);
        Assert.Equal(0, network.Nodes[0].ReplayCache.Count);
    }

    [Fact]
    public void A_header_from_a_network_with_another_MaxRelays_is_malformed()
    {
        var small = new NetworkParameters { MaxRelays = 8 };
        using var smallNetwork = new TestNetwork(small, 1, seed: 180);
        using var defaultNetwork = new TestNetwork(Parameters, 1, seed: 181);
        var builder = new OnionHeaderBuilder(small, new SeededOnionRandom(182));
        var header = new byte[builder.HeaderSize];
        using var keys = builder.Build([defaultNetwork.Nodes[0].AsHop()], TunnelMode.Duplex, DeadlineClass.Seconds5, header);

        using var result = defaultNetwork.Nodes[0].Processor.Process(header, new byte[OnionHeader.SizeFor(Parameters)]);

        Assert.Equal(TunnelErrorKind.Malformed, result.Rejection);
    }

    public static TheoryData<string> LowOrderPoints() => [.. X25519Points.LowOrder.Select(Convert.ToHexStringLower)];

    [Theory]
    [MemberData(nameof(LowOrderPoints))]
    public void A_low_order_alpha_is_malformed_without_an_exception(string alphaHex)
    {
        using var network = new TestNetwork(Parameters, 2, seed: 190);
        var header = Build(network, 1, seed: 191);
        Convert.FromHexString(alphaHex).CopyTo(header.AsSpan(HeaderFields.AlphaStart));

        using var result = network.Nodes[0].Processor.Process(header, new byte[header.Length]);

        Assert.Equal(TunnelErrorKind.Malformed, result.Rejection);
        Assert.Equal(0, network.Nodes[0].ReplayCache.Count);
    }

    [Fact]
    public void Every_non_canonical_alpha_is_malformed()
    {
        // u >= p has a second encoding of the same point (u - p): "two encodings, one secret",
        // which the catalogue calls Malformed, like the top bit.
        using var network = new TestNetwork(Parameters, 2, seed: 195);
        var header = Build(network, 1, seed: 196);
        var next = new byte[header.Length];
        var kinds = new List<TunnelErrorKind>();
        foreach (var alpha in X25519Points.NonCanonical())
        {
            alpha.CopyTo(header.AsSpan(HeaderFields.AlphaStart));
            using var result = network.Nodes[0].Processor.Process(header, next);
            kinds.Add(result.Rejection);
        }

        Assert.Equal(19, kinds.Count);
        Assert.All(kinds, k => Assert.Equal(TunnelErrorKind.Malformed, k));
    }

    [Fact]
    public void An_alpha_with_its_top_bit_set_is_malformed_even_though_it_would_agree()
    {
        using var network = new TestNetwork(Parameters, 2, seed: 197);
        var header = Build(network, 1, seed: 198);
        header[HeaderFields.AlphaEnd - 1] |= 0x80;

        using var result = network.Nodes[0].Processor.Process(header, new byte[header.Length]);

        Assert.Equal(TunnelErrorKind.Malformed, result.Rejection);
    }

    /// <summary>
    /// Random headers of the right length, in four tiers that get further into the processor:
    /// all random; a valid version; a valid version and epoch; and also a top-bit-clear alpha.
    /// </summary>
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Garbage_headers_never_throw_and_are_always_refused(int tier)
    {
        using var network = new TestNetwork(Parameters, 1, seed: 200, epoch: 0x01020304);
        var node = network.Nodes[0];
        var random = new Random(210 + tier);
        var header = new byte[OnionHeader.SizeFor(Parameters)];
        var next = new byte[header.Length];
        var seen = new Dictionary<TunnelErrorKind, int>();
        for (var i = 0; i < 100; i++)
        {
            random.NextBytes(header);
            if (tier >= 1)
            {
                header[HeaderFields.Version] = OnionHeader.Version;
            }

            if (tier >= 2)
            {
                BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(HeaderFields.EpochStart), 0x01020304);
            }

            if (tier >= 3)
            {
                header[HeaderFields.AlphaEnd - 1] &= 0x7f;
            }

            using var result = node.Processor.Process(header, next);
            Assert.Equal(HeaderOutcome.Rejected, result.Outcome);
            seen[result.Rejection] = seen.GetValueOrDefault(result.Rejection) + 1;
        }

        Assert.Equal(0, node.ReplayCache.Count);
        var expected = tier switch
        {
            0 => TunnelErrorKind.UnsupportedVersion, // 255 in 256 of them
            1 => TunnelErrorKind.UnknownEpoch,
            2 => TunnelErrorKind.Malformed, // about half have the top bit set; the rest are Tampered
            _ => TunnelErrorKind.Tampered,
        };
        Assert.True(seen.GetValueOrDefault(expected) > 0, $"tier {tier}: {string.Join(", ", seen)}");
        if (tier == 3)
        {
            Assert.Equal(100, seen[TunnelErrorKind.Tampered]);
        }
    }

    private static byte[] Build(TestNetwork network, int relays, int seed)
    {
        var builder = new OnionHeaderBuilder(network.Parameters, new SeededOnionRandom(seed));
        var header = new byte[builder.HeaderSize];
        using var keys = builder.Build(network.Route(relays), TunnelMode.Duplex, DeadlineClass.Seconds30, header);
        return header;
    }
}
