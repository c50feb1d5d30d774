using Overlay.Identity;
using Overlay.Onion;
using Overlay.Protocol;

namespace Overlay.Tests.Support;

/// <summary>A node of an in-memory network: an identity-like id, an onion key ring and a header processor.</summary>
internal sealed class TestNode : IDisposable
{
    private readonly Random? _keys;

    public TestNode(NetworkParameters parameters, int index, uint epoch = 1, int replayCapacity = 10_000, Random? keys = null)
    {
        Span<byte> id = stackalloc byte[NodeId.Size];
        id.Fill((byte)(index + 1));
        id[0] = (byte)(index >> 8);
        Id = new NodeId(id);
        _keys = keys;
        Ring = new OnionKeyRing();
        Processor = new OnionHeaderProcessor(parameters, Ring);
        AddEpoch(epoch, replayCapacity);
    }

    public NodeId Id { get; }

    public OnionKeyRing Ring { get; }

    public OnionHeaderProcessor Processor { get; }

    /// <summary>The replay cache of the current epoch.</summary>
    public ReplayCache ReplayCache => Ring.Current!.ReplayCache;

    public RouteHop AsHop()
    {
        var current = Ring.Current!;
        return new RouteHop(Id, current.Epoch, current.Key.PublicKey.ToArray());
    }

    /// <summary>Adds an onion key for <paramref name="epoch"/>; it becomes the current one.</summary>
    public OnionKeyEpoch AddEpoch(uint epoch, int replayCapacity = 10_000, double nearlyFullFraction = 0.8)
    {
        var now = DateTimeOffset.UtcNow;
        OnionKey key;
        if (_keys is null)
        {
            key = OnionKey.Create(epoch, now, now.AddHours(1));
        }
        else
        {
            // Deterministic keys make a seeded test reproducible bit for bit.
            Span<byte> raw = stackalloc byte[32];
            _keys.NextBytes(raw);
            key = OnionKey.Import(raw, epoch, now, now.AddHours(1));
        }

        var entry = new OnionKeyEpoch(key, new ReplayCache(replayCapacity, nearlyFullFraction));
        Ring.Add(entry);
        return entry;
    }

    public void Dispose() => Ring.Dispose();
}

/// <summary>Many <see cref="TestNode"/>s with the same parameters.</summary>
internal sealed class TestNetwork : IDisposable
{
    /// <param name="parameters">The network parameters every node shares.</param>
    /// <param name="nodes">How many nodes.</param>
    /// <param name="seed">When set, onion keys come from a seeded generator (reproducible runs).</param>
    /// <param name="epoch">The first epoch of every node.</param>
    /// <param name="replayCapacity">The replay cache capacity of that epoch.</param>
    public TestNetwork(NetworkParameters parameters, int nodes, int? seed = null, uint epoch = 1, int replayCapacity = 10_000)
    {
        Parameters = parameters;
        var keys = seed is { } s ? new Random(s) : null;
        Nodes = Enumerable.Range(0, nodes).Select(i => new TestNode(parameters, i, epoch, replayCapacity, keys)).ToArray();
    }

    public NetworkParameters Parameters { get; }

    public TestNode[] Nodes { get; }

    public TestNode this[NodeId id] => Nodes.Single(n => n.Id == id);

    /// <summary>A route through the first <paramref name="relays"/> nodes to node <paramref name="relays"/>.</summary>
    public RouteHop[] Route(int relays) => Nodes.Take(relays + 1).Select(n => n.AsHop()).ToArray();

    public void Dispose()
    {
        foreach (var node in Nodes)
        {
            node.Dispose();
        }
    }
}
