using System.Numerics;
using Overlay.Errors;
using Overlay.Onion;
using Overlay.Protocol;
using Overlay.Tests.Support;

namespace Overlay.Tests.Onion;

/// <summary>
/// Guarantee 3 (docs/protocol.md) for headers: a modified header is refused by the next hop, with the right typed
/// error for the field that changed. Tampered copies are refused before the replay cache, so one
/// network can judge every flip; each test checks that no tampered copy reached the cache.
/// </summary>
public sealed class HeaderTamperTests
{
    // Every node holds two epochs more than one bit apart, so a flipped epoch never names a held key.
    private const uint OldEpoch = 0x5A5A_0001;
    private const uint CurrentEpoch = 3;

    [Fact]
    public void The_held_epochs_are_more_than_one_bit_apart() =>
        Assert.True(BitOperations.PopCount(OldEpoch ^ CurrentEpoch) > 1);

    [Fact]
    public void Every_bit_flip_of_the_origins_header_is_refused_at_the_first_relay()
    {
        var parameters = NetworkParameters.Default;
        using var network = TwoEpochNetwork(parameters, 9, seed: 801);
        using var tunnel = InMemoryTunnel.Open(parameters, 8, seed: 802, network);
        var header = tunnel.HeaderReceivedBy(1);
        Assert.Equal(OnionHeader.SizeFor(parameters), header.Length);

        var problems = HeaderFields.FlipEach(tunnel.NodeAt(1), header, Enumerable.Range(0, header.Length * 8));

        HeaderFields.AssertNoProblems(problems);
        Assert.Equal(1, tunnel.NodeAt(1).ReplayCache.Count);
    }

    /// <summary>
    /// A full route (8 relays at MaxRelays 8, so the routing block is all slots and filler): every bit
    /// of what each hop receives, i.e. of what the origin or hop k - 1 sent, is checked at that hop.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(6)]
    [InlineData(7)]
    [InlineData(8)]
    [InlineData(9)]
    public void Every_bit_flip_on_every_link_of_a_full_route_is_refused_by_the_receiving_hop(int hop)
    {
        var parameters = new NetworkParameters { MaxRelays = 8 };
        using var network = TwoEpochNetwork(parameters, 9, seed: 810 + hop);
        using var tunnel = InMemoryTunnel.Open(parameters, 8, seed: 820 + hop, network);
        var header = tunnel.HeaderReceivedBy(hop);

        var problems = HeaderFields.FlipEach(tunnel.NodeAt(hop), header, Enumerable.Range(0, header.Length * 8));

        HeaderFields.AssertNoProblems(problems);
        Assert.All(tunnel.Network.Nodes, n => Assert.Equal(1, n.ReplayCache.Count));
    }

    [Fact]
    public void A_seeded_sample_of_bit_flips_at_126_relays_is_refused_at_the_right_hop()
    {
        var parameters = new NetworkParameters { MaxRelays = 126 };
        using var network = TwoEpochNetwork(parameters, 127, seed: 1260);
        using var tunnel = InMemoryTunnel.Open(parameters, 126, seed: 1261, network);
        var size = OnionHeader.SizeFor(parameters);
        var random = new Random(1262);

        // Weighted by field so the small fields are not left to chance: 200 flips in all.
        var samples = new List<int>();
        samples.AddRange(Bits.Sample(random, 0, 1, 8));
        samples.AddRange(Bits.Sample(random, HeaderFields.EpochStart, HeaderFields.AlphaStart, 25));
        samples.Add(HeaderFields.AlphaTopBit);
        samples.AddRange(Bits.Sample(random, HeaderFields.AlphaStart, HeaderFields.AlphaEnd, 40));
        samples.AddRange(Bits.Sample(random, HeaderFields.RoutingStart, HeaderFields.GammaStart(size), 106));
        samples.AddRange(Bits.Sample(random, HeaderFields.GammaStart(size), size, 20));
        Assert.Equal(200, samples.Count);

        var problems = new List<string>();
        foreach (var bit in samples)
        {
            var hop = random.Next(1, 128);
            problems.AddRange(HeaderFields.FlipEach(tunnel.NodeAt(hop), tunnel.HeaderReceivedBy(hop), [bit])
                .Select(p => $"hop {hop}: {p}"));
        }

        HeaderFields.AssertNoProblems(problems);
        Assert.All(tunnel.Network.Nodes, n => Assert.Equal(1, n.ReplayCache.Count));
    }

    /// <summary>
    /// Live, hop by hop: hop k processes the genuine header, its output is tampered on the way, and
    /// hop k + 1 refuses it; the untampered output is still accepted afterwards (the refusal was
    /// about the tamper and cost no replay-cache entry).
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(5)]
    [InlineData(7)]
    [InlineData(8)]
    public void A_header_tampered_after_hop_k_is_refused_at_hop_k_plus_1(int k)
    {
        const int relays = 8;
        var parameters = NetworkParameters.Default;
        using var network = TwoEpochNetwork(parameters, relays + 1, seed: 900 + k);
        var builder = new OnionHeaderBuilder(parameters, new SeededOnionRandom(910 + k));
        var header = new byte[builder.HeaderSize];
        using var keys = builder.Build(network.Route(relays), TunnelMode.Duplex, DeadlineClass.Minute1, header);
        var next = new byte[header.Length];
        for (var hop = 1; hop <= k; hop++)
        {
            using var relayed = network.Nodes[hop - 1].Processor.Process(header, next);
            Assert.Equal(HeaderOutcome.Relay, relayed.Outcome);
            (header, next) = (next, header);
        }

        var receiver = network.Nodes[k];
        var random = new Random(920 + k);
        var size = header.Length;
        int[] bits =
        [
            HeaderFields.AlphaStart * 8 + random.Next(8 * 31),
            HeaderFields.RoutingStart * 8 + random.Next(HeaderLayout.SlotSize * 8), // the slot hop k + 1 reads
            HeaderFields.RoutingStart * 8 + random.Next((size - HeaderFields.GammaSize - HeaderFields.RoutingStart) * 8),
            HeaderFields.GammaStart(size) * 8 + random.Next(HeaderFields.GammaSize * 8),
        ];
        foreach (var bit in bits)
        {
            using var refused = receiver.Processor.Process(Bits.Flipped(header, bit), next);
            Assert.Equal(HeaderOutcome.Rejected, refused.Outcome);
            Assert.Equal(TunnelErrorKind.Tampered, refused.Rejection);
        }

        Assert.Equal(0, receiver.ReplayCache.Count);
        using var accepted = receiver.Processor.Process(header, next);
        Assert.Equal(k == relays ? HeaderOutcome.Deliver : HeaderOutcome.Relay, accepted.Outcome);
    }

    [Fact]
    public void A_header_moved_to_another_held_epoch_is_tampered_not_accepted()
    {
        var parameters = NetworkParameters.Default;
        using var network = TwoEpochNetwork(parameters, 3, seed: 930);
        using var tunnel = InMemoryTunnel.Open(parameters, 2, seed: 931, network);
        var header = tunnel.HeaderReceivedBy(2);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(HeaderFields.EpochStart), OldEpoch);

        using var result = tunnel.NodeAt(2).Processor.Process(header, new byte[header.Length]);

        Assert.Equal(TunnelErrorKind.Tampered, result.Rejection);
    }

    private static TestNetwork TwoEpochNetwork(NetworkParameters parameters, int nodes, int seed)
    {
        var network = new TestNetwork(parameters, nodes, seed, OldEpoch);
        foreach (var node in network.Nodes)
        {
            node.AddEpoch(CurrentEpoch);
        }

        return network;
    }
}
