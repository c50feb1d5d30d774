using System.Buffers.Binary;
using Overlay.Errors;
using Overlay.Identity;
using Overlay.Onion;
using Overlay.Protocol;
using Overlay.Tests.Support;

namespace Overlay.Tests.Onion;

/// <summary>Guarantee 4 (docs/protocol.md): replays are refused, a full cache fails closed, the tag comes from the secret.</summary>
public sealed class ReplayCacheTests
{
    private static readonly NetworkParameters Parameters = NetworkParameters.Default;

    [Fact]
    public void A_full_cache_refuses_new_tunnels_as_busy_never_evicts_and_warns_once_at_the_threshold()
    {
        using var network = new TestNetwork(Parameters, 1, seed: 400, replayCapacity: 3);
        var node = network.Nodes[0];
        var warnings = new List<int>();
        node.ReplayCache.NearlyFull += cache => warnings.Add(cache.Count);
        Assert.Equal(2, node.ReplayCache.NearlyFullThreshold); // 80 % of 3, rounded down

        var headers = Enumerable.Range(0, 5).Select(i => Build(network, 410 + i)).ToArray();
        var outcomes = new List<TunnelErrorKind>();
        var warningsAfter = new List<int>();
        foreach (var header in headers)
        {
            using var result = node.Processor.Process(header, new byte[header.Length]);
            outcomes.Add(result.Rejection);
            warningsAfter.Add(warnings.Count);
        }

        Assert.Equal([TunnelErrorKind.None, TunnelErrorKind.None, TunnelErrorKind.None, TunnelErrorKind.Busy, TunnelErrorKind.Busy], outcomes);
        Assert.Equal([0, 1, 1, 1, 1], warningsAfter);
        Assert.Equal([2], warnings);
        Assert.Equal(3, node.ReplayCache.Count);
        using var replay = node.Processor.Process(headers[0], new byte[headers[0].Length]);
        Assert.Equal(TunnelErrorKind.Replayed, replay.Rejection);
    }

    [Theory]
    [InlineData(10, 0.5, 5)]
    [InlineData(10, 1.0, 10)]
    [InlineData(1, 0.1, 1)]
    [InlineData(1000, 0.8, 800)]
    public void NearlyFull_is_raised_exactly_once_when_the_count_reaches_the_threshold(int capacity, double fraction, int threshold)
    {
        var cache = new ReplayCache(capacity, fraction);
        var raisedAt = new List<int>();
        cache.NearlyFull += c => raisedAt.Add(c.Count);

        var checks = Enumerable.Range(1, capacity + 2).Select(i => cache.TryAdd((UInt128)i)).ToArray();

        Assert.Equal(threshold, cache.NearlyFullThreshold);
        Assert.Equal([threshold], raisedAt);
        Assert.All(checks[..capacity], c => Assert.Equal(ReplayCheck.Fresh, c));
        Assert.All(checks[capacity..], c => Assert.Equal(ReplayCheck.Full, c));
        Assert.Equal(ReplayCheck.Replayed, cache.TryAdd(1));
        Assert.Equal(capacity, cache.Count);
    }

    [Fact]
    public void The_cache_refuses_impossible_settings()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new ReplayCache(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ReplayCache(10, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ReplayCache(10, 1.01));
    }

    [Fact]
    public void A_saved_cache_loads_with_the_same_tags_and_does_not_warn_again()
    {
        var cache = new ReplayCache(10, 0.5);
        var random = new Random(420);
        var tags = Enumerable.Range(0, 6).Select(_ => (UInt128)random.NextInt64() << 64 | (ulong)random.NextInt64()).ToArray();
        foreach (var tag in tags)
        {
            Assert.Equal(ReplayCheck.Fresh, cache.TryAdd(tag));
        }

        using var file = new MemoryStream();
        cache.Save(file);
        file.Position = 0;
        var loaded = ReplayCache.Load(file, 10, 0.5);
        var raised = 0;
        loaded.NearlyFull += _ => raised++;

        Assert.Equal(6, loaded.Count);
        Assert.All(tags, t => Assert.Equal(ReplayCheck.Replayed, loaded.TryAdd(t)));
        Assert.Equal(ReplayCheck.Fresh, loaded.TryAdd(12345));
        Assert.Equal(0, raised);
    }

    [Fact]
    public void Loading_refuses_a_foreign_oversized_or_cut_file()
    {
        var cache = new ReplayCache(10);
        cache.TryAdd(1);
        cache.TryAdd(2);
        using var file = new MemoryStream();
        cache.Save(file);
        var bytes = file.ToArray();
        var foreign = bytes.ToArray();
        foreign[0] ^= 0xff;

        Assert.Throws<InvalidDataException>(() => ReplayCache.Load(new MemoryStream(foreign), 10));
        Assert.Throws<InvalidDataException>(() => ReplayCache.Load(new MemoryStream(bytes), 1));
        Assert.Throws<EndOfStreamException>(() => ReplayCache.Load(new MemoryStream(bytes[..^1]), 10));
    }

    [Fact]
    public void A_hop_restarted_with_its_reloaded_cache_still_refuses_the_replay()
    {
        var raw = new byte[32];
        new Random(430).NextBytes(raw);
        var now = DateTimeOffset.UtcNow;
        using var before = new OnionKeyRing();
        before.Add(new OnionKeyEpoch(OnionKey.Import(raw, 9, now, now.AddHours(1)), new ReplayCache(100)));
        var processor = new OnionHeaderProcessor(Parameters, before);
        var id = new byte[NodeId.Size];
        id[0] = 1;
        var hop = new RouteHop(new NodeId(id), 9, before.Current!.Key.PublicKey.ToArray());
        var builder = new OnionHeaderBuilder(Parameters, new SeededOnionRandom(431));
        var header = new byte[builder.HeaderSize];
        using (builder.Build([hop], TunnelMode.Duplex, DeadlineClass.Seconds5, header))
        using (var first = processor.Process(header, new byte[header.Length]))
        {
            Assert.Equal(HeaderOutcome.Deliver, first.Outcome);
        }

        using var saved = new MemoryStream();
        before.Current!.ReplayCache.Save(saved);
        saved.Position = 0;

        using var reloaded = new OnionKeyRing();
        reloaded.Add(new OnionKeyEpoch(OnionKey.Import(raw, 9, now, now.AddHours(1)), ReplayCache.Load(saved, 100)));
        using var forgetful = new OnionKeyRing();
        forgetful.Add(new OnionKeyEpoch(OnionKey.Import(raw, 9, now, now.AddHours(1)), new ReplayCache(100)));
        using var afterReload = new OnionHeaderProcessor(Parameters, reloaded).Process(header, new byte[header.Length]);
        using var withoutReload = new OnionHeaderProcessor(Parameters, forgetful).Process(header, new byte[header.Length]);

        Assert.Equal(TunnelErrorKind.Replayed, afterReload.Rejection);
        // Why a restarted node must refuse every epoch whose cache it did not reload:
        Assert.Equal(HeaderOutcome.Deliver, withoutReload.Outcome);
    }

    [Fact]
    public void The_replay_tag_is_derived_from_the_shared_secret_not_from_alpha()
    {
        using var tunnel = InMemoryTunnel.Open(Parameters, 2, seed: 440);

        for (var hop = 1; hop <= 3; hop++)
        {
            var cache = tunnel.NodeAt(hop).ReplayCache;
            var alpha = tunnel.HeaderReceivedBy(hop).AsSpan(HeaderFields.AlphaStart, 32);
            Assert.Equal(ReplayCheck.Replayed, cache.TryAdd(tunnel.OriginKeys.Hops[hop - 1].ReplayTag));
            Assert.Equal(ReplayCheck.Fresh, cache.TryAdd(BinaryPrimitives.ReadUInt128BigEndian(alpha)));
            Assert.Equal(ReplayCheck.Fresh, cache.TryAdd(BinaryPrimitives.ReadUInt128LittleEndian(alpha)));
            Assert.Equal(ReplayCheck.Fresh, cache.TryAdd(BinaryPrimitives.ReadUInt128BigEndian(alpha[16..])));
            Assert.Equal(ReplayCheck.Fresh, cache.TryAdd(BinaryPrimitives.ReadUInt128LittleEndian(alpha[16..])));
        }
    }

    private static byte[] Build(TestNetwork network, int seed)
    {
        var builder = new OnionHeaderBuilder(network.Parameters, new SeededOnionRandom(seed));
        var header = new byte[builder.HeaderSize];
        using var keys = builder.Build(network.Route(0), TunnelMode.Duplex, DeadlineClass.Seconds30, header);
        return header;
    }
}
