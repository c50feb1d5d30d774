using System.Buffers.Binary;
using Overlay.Cells;
using Overlay.Identity;
using Overlay.Onion;
using Overlay.Protocol;

namespace Overlay.Bench;

/// <summary>A node reduced to what the crypto benchmarks need: an id and one onion key.</summary>
internal sealed class BenchNode : IDisposable
{
    private const uint Epoch = 1;

    public BenchNode(int index)
    {
        Span<byte> id = stackalloc byte[NodeId.Size];
        id.Fill(0x5A);
        BinaryPrimitives.WriteInt32BigEndian(id, index + 1);
        Id = new NodeId(id);
        var now = DateTimeOffset.UtcNow;
        Key = OnionKey.Create(Epoch, now, now.AddHours(1));
    }

    public NodeId Id { get; }

    public OnionKey Key { get; }

    public RouteHop Hop => new(Id, Epoch, Key.PublicKey.ToArray());

    /// <summary>
    /// A header processor over this node's onion key with an empty replay cache, so the same
    /// headers can be processed again. The ring is not disposed: it would dispose the shared key.
    /// </summary>
    public OnionHeaderProcessor NewProcessor(NetworkParameters parameters, int replayCapacity)
    {
        var ring = new OnionKeyRing();
        ring.Add(new OnionKeyEpoch(Key, new ReplayCache(replayCapacity)));
        return new OnionHeaderProcessor(parameters, ring);
    }

    public static BenchNode[] Many(int count) => [.. Enumerable.Range(0, count).Select(i => new BenchNode(i))];

    public void Dispose() => Key.Dispose();
}

/// <summary>One tunnel through every node but the last (relays) to the last (destination), with each hop's codec.</summary>
internal sealed class BenchTunnel : IDisposable
{
    private BenchTunnel(OriginCellCodec origin, RelayCellCodec[] relays, DestinationCellCodec destination)
    {
        Origin = origin;
        Relays = relays;
        Destination = destination;
    }

    public OriginCellCodec Origin { get; }

    public RelayCellCodec[] Relays { get; }

    public DestinationCellCodec Destination { get; }

    /// <summary>Builds a header, processes it at every hop in turn and keeps the codecs, as a real tunnel would.</summary>
    public static BenchTunnel Open(NetworkParameters parameters, BenchNode[] nodes, OnionHeaderProcessor[] processors)
    {
        var builder = new OnionHeaderBuilder(parameters);
        var header = new byte[builder.HeaderSize];
        var next = new byte[header.Length];
        var route = nodes.Select(n => n.Hop).ToArray();
        var origin = new OriginCellCodec(parameters, builder.Build(route, TunnelMode.Duplex, DeadlineClass.Seconds30, header));
        var relays = new RelayCellCodec[nodes.Length - 1];
        for (var hop = 0; hop < relays.Length; hop++)
        {
            using var result = processors[hop].Process(header, next);
            relays[hop] = result.Outcome == HeaderOutcome.Relay
                ? result.CreateRelayCodec(parameters)
                : throw new InvalidOperationException($"hop {hop}: {result.Outcome} {result.Rejection}");
            (header, next) = (next, header);
        }

        using var last = processors[^1].Process(header, next);
        var destination = last.Outcome == HeaderOutcome.Deliver
            ? last.CreateDestinationCodec(parameters)
            : throw new InvalidOperationException($"destination: {last.Outcome} {last.Rejection}");
        return new BenchTunnel(origin, relays, destination);
    }

    public void Dispose()
    {
        Origin.Dispose();
        foreach (var relay in Relays)
        {
            relay.Dispose();
        }

        Destination.Dispose();
    }
}
