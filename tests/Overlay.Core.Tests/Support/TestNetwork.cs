using Overlay.Identity;
using Overlay.Onion;
using Overlay.Protocol;

namespace Overlay.Tests.Support;

/// <summary>A node of an in-memory network: an identity-like id, an onion key ring and a header processor.</summary>
internal sealed class TestNode : IDisposable
{
    public TestNode(NetworkParameters parameters, int index, uint epoch = 1, int replayCapacity = 10_000)
    {
        Span<byte> id = stackalloc byte[NodeId.Size];
        id.Fill((byte)(index + 1));
        id[0] = (byte)(index >> 8);
        Id = new NodeId(id);
        var now = DateTimeOffset.UtcNow;
        Ring = new OnionKeyRing();
        Ring.Add(new OnionKeyEpoch(OnionKey.Create(epoch, now, now.AddHours(1)), new ReplayCache(replayCapacity)));
        Processor = new OnionHeaderProcessor(parameters, Ring);
    }

    public NodeId Id { get; }

    public OnionKeyRing Ring { get; }

    public OnionHeaderProcessor Processor { get; }

    public RouteHop AsHop()
    {
        var current = Ring.Current!;
        return new RouteHop(Id, current.Epoch, current.Key.PublicKey.ToArray());
    }

    public void Dispose() => Ring.Dispose();
}

/// <summary>Many <see cref="TestNode"/>s with the same parameters.</summary>
internal sealed class TestNetwork : IDisposable
{
    public TestNetwork(NetworkParameters parameters, int nodes)
    {
        Parameters = parameters;
        Nodes = Enumerable.Range(0, nodes).Select(i => new TestNode(parameters, i)).ToArray();
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
