using Overlay.Cells;
using Overlay.Errors;
using Overlay.Identity;
using Overlay.Onion;
using Overlay.Protocol;

namespace Overlay.Tests.Support;

/// <summary>How a message is cut into cells: Data cells, then the authenticated End cell.</summary>
internal enum EndStyle
{
    /// <summary>The End cell carries the message's last bytes (at least one Data-free End for an empty message).</summary>
    CarriesLastBytes,

    /// <summary>Every byte goes in Data cells; the End cell is empty.</summary>
    Empty,
}

/// <summary>What a hop saw when it processed the tunnel's header.</summary>
internal sealed record HopView(HeaderOutcome Outcome, uint Epoch, NodeId NextHop, TunnelMode Mode, DeadlineClass Deadline, ReadOnlyMemory<byte> SealedTraceContext);

/// <summary>A failure one hop reported. <see cref="DetectedAt"/>: 0 = origin, 1..R relays, R + 1 destination.</summary>
/// <param name="Kind">The typed error.</param>
/// <param name="DetectedAt">The hop whose code reported it.</param>
/// <param name="AttributedHop">For the origin: the hop its <see cref="OpenedCell.Hop"/> names (0 when unknown).</param>
internal sealed record StreamFailure(TunnelErrorKind Kind, int DetectedAt, int AttributedHop);

/// <summary>What crossed one link: cells as the sending hop emitted them.</summary>
internal sealed class LinkStats(int receiver)
{
    public int Receiver { get; } = receiver;

    public long Cells { get; private set; }

    public long Bytes { get; private set; }

    public HashSet<int> CellSizes { get; } = [];

    /// <summary>Chunks delivered to the receiver, how many were empty, and how many were not a whole number of cells.</summary>
    public long Chunks { get; private set; }

    public long EmptyChunks { get; private set; }

    public long UnalignedChunks { get; private set; }

    public void RecordChunk(int length, int cellSize)
    {
        Chunks++;
        EmptyChunks += length == 0 ? 1 : 0;
        UnalignedChunks += length % cellSize != 0 ? 1 : 0;
    }

    public void Record(int cellLength)
    {
        Cells++;
        Bytes += cellLength;
        CellSizes.Add(cellLength);
    }
}

/// <summary>The outcome of one message (or error cell) sent through the tunnel.</summary>
internal sealed class StreamResult
{
    /// <summary>The message the receiving end reassembled, when it saw the End cell and nothing failed.</summary>
    public byte[]? Message { get; init; }

    /// <summary>Every failure reported, in order; normally at most one, since a failed hop stops.</summary>
    public required IReadOnlyList<StreamFailure> Failures { get; init; }

    /// <summary>The first failure, or null.</summary>
    public StreamFailure? Failure => Failures.Count > 0 ? Failures[0] : null;

    /// <summary>Per link, keyed by the receiving hop.</summary>
    public required IReadOnlyDictionary<int, LinkStats> Links { get; init; }
}

/// <summary>
/// One tunnel over an in-memory network: origin, R relays, destination. The header is processed
/// hop by hop; then messages move as byte streams through every hop, cut at random (seeded) chunk
/// boundaries, including empty chunks, and each hop reassembles cells with a <see cref="CellAssembler"/>,
/// processes them and writes them to the next link, cell by cell, the way a node pipes them.
/// A hop that reports a failure stops; nothing after it runs. A stream that closes without an End
/// cell, or with a partial cell held, is <see cref="TunnelErrorKind.Truncated"/> at the hop that sees it.
/// </summary>
/// <remarks>
/// Seeds drive onion keys (when the tunnel owns its network), the origin's ephemeral keys and the chunking.
/// Two tunnels over one shared network need different seeds, or their headers replay each other.
/// </remarks>
internal sealed class InMemoryTunnel : IDisposable
{
    private readonly bool _ownsNetwork;
    private readonly Random _chunks;
    private readonly List<byte[]> _headers;
    private readonly RelayCellCodec[] _relays;

    private InMemoryTunnel(
        NetworkParameters parameters,
        TestNetwork network,
        bool ownsNetwork,
        int seed,
        OriginTunnelKeys keys,
        OriginCellCodec origin,
        List<byte[]> headers,
        List<HopView> views,
        RelayCellCodec[] relays,
        DestinationCellCodec destination)
    {
        Parameters = parameters;
        Network = network;
        _ownsNetwork = ownsNetwork;
        _chunks = new Random(seed ^ 0x0C4A7C);
        OriginKeys = keys;
        Origin = origin;
        _headers = headers;
        HopViews = views;
        _relays = relays;
        Destination = destination;
    }

    public NetworkParameters Parameters { get; }

    public TestNetwork Network { get; }

    /// <summary>R.</summary>
    public int Relays => _relays.Length;

    /// <summary>The destination's hop number, R + 1.</summary>
    public int DestinationHop => _relays.Length + 1;

    public OriginCellCodec Origin { get; }

    /// <summary>The keys the origin codec owns (valid until the tunnel is disposed).</summary>
    public OriginTunnelKeys OriginKeys { get; }

    public IReadOnlyList<RelayCellCodec> RelayCodecs => _relays;

    public DestinationCellCodec Destination { get; }

    /// <summary>What hops 1..R+1 saw, at index hop - 1.</summary>
    public IReadOnlyList<HopView> HopViews { get; }

    /// <summary>The largest chunk a link delivers at once, in cells.</summary>
    public int MaxChunkCells { get; set; } = 3;

    /// <summary>Opens a tunnel through <paramref name="relays"/> relays (the first R + 1 nodes of the network).</summary>
    public static InMemoryTunnel Open(
        NetworkParameters parameters,
        int relays,
        int seed,
        TestNetwork? network = null,
        TunnelMode mode = TunnelMode.Duplex,
        DeadlineClass deadline = DeadlineClass.Seconds30,
        byte[]? sealedTraceContexts = null)
    {
        var ownsNetwork = network is null;
        network ??= new TestNetwork(parameters, relays + 1, seed);
        OriginCellCodec? origin = null;
        var codecs = new List<RelayCellCodec>();
        try
        {
            var builder = new OnionHeaderBuilder(parameters, new SeededOnionRandom(seed));
            var header = new byte[builder.HeaderSize];
            var keys = builder.Build(network.Route(relays), mode, deadline, header, sealedTraceContexts);
            origin = new OriginCellCodec(parameters, keys, new SeededOnionRandom(~seed));

            var headers = new List<byte[]> { header.ToArray() };
            var views = new List<HopView>();
            for (var hop = 1; hop <= relays + 1; hop++)
            {
                var next = new byte[header.Length];
                using var result = network.Nodes[hop - 1].Processor.Process(header, next);
                views.Add(new HopView(result.Outcome, result.Epoch, result.NextHop, result.Mode, result.Deadline, result.SealedTraceContext));
                if (hop <= relays)
                {
                    if (result.Outcome != HeaderOutcome.Relay)
                    {
                        throw new InvalidOperationException($"hop {hop} did not relay the header: {result.Outcome} {result.Rejection}");
                    }

                    codecs.Add(result.CreateRelayCodec(parameters));
                    header = next;
                    headers.Add(header.ToArray());
                }
                else
                {
                    if (result.Outcome != HeaderOutcome.Deliver)
                    {
                        throw new InvalidOperationException($"the destination did not accept the header: {result.Outcome} {result.Rejection}");
                    }

                    var destination = result.CreateDestinationCodec(parameters);
                    return new InMemoryTunnel(parameters, network, ownsNetwork, seed, keys, origin, headers, views, [.. codecs], destination);
                }
            }

            throw new InvalidOperationException("unreachable");
        }
        catch
        {
            origin?.Dispose();
            codecs.ForEach(c => c.Dispose());
            if (ownsNetwork)
            {
                network.Dispose();
            }

            throw;
        }
    }

    /// <summary>The header exactly as hop <paramref name="hop"/> (1..R+1) received it; hop 1's is the origin's.</summary>
    public byte[] HeaderReceivedBy(int hop) => _headers[hop - 1].ToArray();

    /// <summary>The node acting as hop <paramref name="hop"/> (1..R+1).</summary>
    public TestNode NodeAt(int hop) => Network.Nodes[hop - 1];

    /// <summary>Streams <paramref name="message"/> from the origin to the destination.</summary>
    public StreamResult SendForward(ReadOnlySpan<byte> message, LinkFilter? filter = null, EndStyle style = EndStyle.CarriesLastBytes)
    {
        var run = new Run(this, Direction.Forward, filter);
        var sink = new Endpoint(run, DestinationHop, (cell, plaintext) => Destination.OpenForward(cell, plaintext));
        IStage next = sink;
        for (var hop = Relays; hop >= 1; hop--)
        {
            next = new RelayStage(run, hop, _relays[hop - 1], run.Link(hop + 1, next));
        }

        var first = run.Link(1, next);
        var cell = new byte[Parameters.CellSize];
        foreach (var (type, payload) in Split(message.Length, Origin.ForwardPayloadCapacity, style))
        {
            Origin.SealForward(type, message[payload], cell);
            first.Send(cell);
        }

        first.Close();
        return run.Result(sink);
    }

    /// <summary>Streams <paramref name="message"/> from the destination back to the origin.</summary>
    public StreamResult SendBackward(ReadOnlySpan<byte> message, LinkFilter? filter = null, EndStyle style = EndStyle.CarriesLastBytes)
    {
        var run = new Run(this, Direction.Backward, filter);
        var (sink, link) = BackwardChain(run, Relays);
        var cell = new byte[Parameters.CellSize];
        foreach (var (type, payload) in Split(message.Length, Destination.BackwardPayloadCapacity, style))
        {
            Destination.SealBackward(type, message[payload], cell);
            link.Send(cell);
        }

        link.Close();
        return run.Result(sink);
    }

    /// <summary>
    /// Hop <paramref name="hop"/> (1..R relays, R + 1 destination) writes an error cell; the relays
    /// before it add their layers and the origin opens it.
    /// </summary>
    public StreamResult SendError(int hop, TunnelErrorKind kind, LinkFilter? filter = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(hop, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(hop, DestinationHop);
        var run = new Run(this, Direction.Backward, filter);
        var (sink, link) = BackwardChain(run, hop - 1);
        var cell = new byte[Parameters.CellSize];
        if (hop == DestinationHop)
        {
            Destination.WriteErrorCell(kind, cell);
        }
        else
        {
            _relays[hop - 1].WriteErrorCell(kind, cell);
        }

        link.Send(cell);
        link.Close();
        return run.Result(sink);
    }

    /// <summary>
    /// The cells of a message of <paramref name="length"/> bytes: full Data cells, then End. Each
    /// item is the cell type and the payload's range in the message.
    /// </summary>
    public static IEnumerable<(CellType Type, Range Payload)> Split(int length, int capacity, EndStyle style = EndStyle.CarriesLastBytes)
    {
        var offset = 0;
        if (style == EndStyle.Empty)
        {
            for (; offset < length; offset += capacity)
            {
                yield return (CellType.Data, offset..Math.Min(length, offset + capacity));
            }

            yield return (CellType.End, length..length);
            yield break;
        }

        for (; length - offset > capacity; offset += capacity)
        {
            yield return (CellType.Data, offset..(offset + capacity));
        }

        yield return (CellType.End, offset..length);
    }

    public void Dispose()
    {
        Origin.Dispose();
        foreach (var relay in _relays)
        {
            relay.Dispose();
        }

        Destination.Dispose();
        if (_ownsNetwork)
        {
            Network.Dispose();
        }
    }

    // The origin's sink and the link that feeds relay `lastRelay` (or the origin when it is 0).
    private (Endpoint Sink, ChunkedLink Link) BackwardChain(Run run, int lastRelay)
    {
        var sink = new Endpoint(run, 0, Origin.OpenBackward);
        var link = run.Link(0, sink);
        for (var hop = 1; hop <= lastRelay; hop++)
        {
            link = run.Link(hop, new RelayStage(run, hop, _relays[hop - 1], link));
        }

        return (sink, link);
    }

    private int NextChunk(int cellSize) => _chunks.Next(10) switch
    {
        0 => 0,
        1 or 2 => _chunks.Next(1, 17),
        3 or 4 or 5 or 6 => _chunks.Next(1, cellSize + 1),
        _ => _chunks.Next(cellSize, (MaxChunkCells * cellSize) + 1),
    };

    private delegate OpenedCell CellOpener(Span<byte> cell, Span<byte> plaintext);

    private interface IStage
    {
        void Receive(Span<byte> chunk);

        void Complete();
    }

    private sealed class Run(InMemoryTunnel tunnel, Direction direction, LinkFilter? filter)
    {
        private readonly List<StreamFailure> _failures = [];
        private readonly SortedDictionary<int, LinkStats> _links = [];

        public InMemoryTunnel Tunnel => tunnel;

        public Direction Direction => direction;

        public LinkFilter? Filter => filter;

        public int CellSize => tunnel.Parameters.CellSize;

        public ChunkedLink Link(int receiver, IStage next)
        {
            var stats = new LinkStats(receiver);
            _links.Add(receiver, stats);
            return new ChunkedLink(this, receiver, next, stats);
        }

        public void Fail(TunnelErrorKind kind, int hop, int attributedHop = 0) => _failures.Add(new StreamFailure(kind, hop, attributedHop));

        public StreamResult Result(Endpoint sink) => new()
        {
            Message = _failures.Count == 0 ? sink.Message : null,
            Failures = _failures,
            Links = _links,
        };
    }

    /// <summary>A link: whole cells in, random chunks out, at most a few cells buffered.</summary>
    private sealed class ChunkedLink : ILinkWriter
    {
        private readonly Run _run;
        private readonly int _receiver;
        private readonly IStage _next;
        private readonly LinkStats _stats;
        private byte[] _buffer;
        private int _count;
        private int _chunk;
        private long _index;

        public ChunkedLink(Run run, int receiver, IStage next, LinkStats stats)
        {
            _run = run;
            _receiver = receiver;
            _next = next;
            _stats = stats;
            _buffer = new byte[(run.Tunnel.MaxChunkCells + 2) * run.CellSize];
            _chunk = run.Tunnel.NextChunk(run.CellSize);
        }

        public void Send(ReadOnlySpan<byte> cell)
        {
            _stats.Record(cell.Length);
            var index = _index++;
            if (_run.Filter is { } filter)
            {
                filter.OnCell(_run.Direction, _receiver, index, cell, this);
            }
            else
            {
                Write(cell);
            }
        }

        public void Write(ReadOnlySpan<byte> bytes)
        {
            if (_count + bytes.Length > _buffer.Length)
            {
                Array.Resize(ref _buffer, Math.Max(2 * _buffer.Length, _count + bytes.Length));
            }

            bytes.CopyTo(_buffer.AsSpan(_count));
            _count += bytes.Length;
            while (_count >= _chunk)
            {
                Deliver(_chunk);
            }
        }

        public void Close()
        {
            _run.Filter?.OnClose(_run.Direction, _receiver, this);
            while (_count > 0)
            {
                Deliver(Math.Min(_count, _chunk));
            }

            _next.Complete();
        }

        private void Deliver(int length)
        {
            // The receiver works on the chunk in place, as a hop does on its read buffer.
            _stats.RecordChunk(length, _run.CellSize);
            _next.Receive(_buffer.AsSpan(0, length));
            _buffer.AsSpan(length, _count - length).CopyTo(_buffer);
            _count -= length;
            _chunk = _run.Tunnel.NextChunk(_run.CellSize);
        }
    }

    /// <summary>A relay in either direction: reassemble, process in place, pass on.</summary>
    private sealed class RelayStage(Run run, int hop, RelayCellCodec codec, ChunkedLink next) : IStage
    {
        private readonly CellAssembler _assembler = new(run.CellSize);
        private bool _stopped;

        public void Receive(Span<byte> chunk)
        {
            while (!_stopped && _assembler.TryNext(ref chunk, out var cell))
            {
                if (run.Direction == Direction.Forward)
                {
                    var kind = codec.ProcessForward(cell);
                    if (kind != TunnelErrorKind.None)
                    {
                        run.Fail(kind, hop);
                        _stopped = true;
                        return;
                    }
                }
                else
                {
                    codec.ProcessBackward(cell);
                }

                next.Send(cell);
            }
        }

        public void Complete()
        {
            if (_stopped)
            {
                return;
            }

            if (_assembler.PendingBytes > 0)
            {
                run.Fail(TunnelErrorKind.Truncated, hop);
                return;
            }

            next.Close();
        }
    }

    /// <summary>The receiving end: open cells, concatenate payloads until End.</summary>
    private sealed class Endpoint(Run run, int hop, CellOpener open) : IStage
    {
        private readonly CellAssembler _assembler = new(run.CellSize);
        private readonly byte[] _plaintext = new byte[run.CellSize];
        private readonly MemoryStream _message = new();
        private bool _ended;
        private bool _stopped;

        public byte[]? Message => _ended && !_stopped ? _message.ToArray() : null;

        public void Receive(Span<byte> chunk)
        {
            while (!_stopped && _assembler.TryNext(ref chunk, out var cell))
            {
                if (_ended)
                {
                    Stop(TunnelErrorKind.ProtocolViolation); // a cell after the end marker
                    return;
                }

                var opened = open(cell, _plaintext);
                if (opened.IsError)
                {
                    Stop(opened.Error, opened.Hop);
                    return;
                }

                _message.Write(_plaintext, OpenedCell.PayloadOffset, opened.PayloadLength);
                _ended = opened.Type == CellType.End;
            }
        }

        public void Complete()
        {
            if (!_stopped && (!_ended || _assembler.PendingBytes > 0))
            {
                Stop(TunnelErrorKind.Truncated);
            }
        }

        private void Stop(TunnelErrorKind kind, int attributedHop = 0)
        {
            run.Fail(kind, hop, attributedHop);
            _stopped = true;
        }
    }
}
