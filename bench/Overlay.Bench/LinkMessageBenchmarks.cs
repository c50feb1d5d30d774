using BenchmarkDotNet.Attributes;
using Overlay.Cells;
using Overlay.Errors;
using Overlay.Onion;
using Overlay.Protocol;

namespace Overlay.Bench;

/// <summary>
/// The onion work on one link message as a node does it (the node's defaults: 8 cells of 4 KiB,
/// 3 relays, MaxRelays 32), each row once cell by cell and once as a batch (one cipher call per
/// layer for the whole message). Same set-up rules as <see cref="CellBenchmarks"/>: a fresh tunnel
/// and pre-built messages per iteration, one message per invocation, every result checked.
/// </summary>
public class LinkMessageBenchmarks
{
    public const int CellsPerMessage = 8;
    public const int MessagesPerIteration = 128;
    public const int MessageBytes = CellsPerMessage * CellSize;
    private const int CellSize = 4096;

    private NetworkParameters _parameters = NetworkParameters.Default;
    private BenchNode[] _nodes = [];
    private OnionHeaderProcessor[] _processors = [];
    private BenchTunnel? _tunnel;
    private byte[] _messages = [];
    private byte[] _plaintext = [];
    private byte[] _forwardData = [];
    private int _next;

    [Params(CellConstruction.Baseline, CellConstruction.MacArray)]
    public CellConstruction Construction { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _parameters = new NetworkParameters { MaxRelays = CellBenchmarks.MaxRelays, CellSize = CellSize, Construction = Construction }.EnsureValid();
        _nodes = BenchNode.Many(CellBenchmarks.Relays + 1);
        _processors = [.. _nodes.Select(n => n.NewProcessor(_parameters, 1_000_000))];
        var layout = new CellLayout(_parameters);
        _messages = new byte[MessagesPerIteration * CellsPerMessage * CellSize];
        _plaintext = new byte[layout.PlaintextBufferSize];
        _forwardData = new byte[layout.ForwardPayloadCapacity * CellsPerMessage];
        Random.Shared.NextBytes(_forwardData);
    }

    [IterationSetup(Targets = [nameof(OriginSealCellByCell), nameof(OriginSealBatch)])]
    public void FreshTunnel()
    {
        _tunnel?.Dispose();
        _tunnel = BenchTunnel.Open(_parameters, _nodes, _processors);
        _next = 0;
    }

    [IterationSetup(Targets = [nameof(RelayForwardCellByCell), nameof(RelayForwardBatch)])]
    public void MessagesForFirstRelay()
    {
        FreshTunnel();
        for (var i = 0; i < MessagesPerIteration; i++)
        {
            _tunnel!.Origin.SealForwardCells(_forwardData, final: false, Message(i));
        }
    }

    [IterationSetup(Targets = [nameof(OriginOpenCellByCell), nameof(OriginOpenBatch)])]
    public void MessagesForOrigin()
    {
        FreshTunnel();
        var reply = new byte[_tunnel!.Destination.BackwardPayloadCapacity * CellsPerMessage];
        for (var i = 0; i < MessagesPerIteration; i++)
        {
            _tunnel.Destination.SealBackwardCells(reply, final: false, Message(i));
            for (var r = _tunnel.Relays.Length - 1; r >= 0; r--)
            {
                _tunnel.Relays[r].ProcessBackwardCells(Message(i));
            }
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _tunnel?.Dispose();
        _tunnel = null;
        foreach (var node in _nodes)
        {
            node.Dispose();
        }
    }

    [Benchmark]
    public void OriginSealCellByCell()
    {
        var message = NextMessage();
        var capacity = _tunnel!.Origin.ForwardPayloadCapacity;
        for (var i = 0; i < CellsPerMessage; i++)
        {
            _tunnel.Origin.SealForward(CellType.Data, _forwardData.AsSpan(i * capacity, capacity), message.Slice(i * CellSize, CellSize));
        }
    }

    [Benchmark]
    public int OriginSealBatch() => _tunnel!.Origin.SealForwardCells(_forwardData, final: false, NextMessage());

    [Benchmark]
    public void RelayForwardCellByCell()
    {
        var message = NextMessage();
        for (var i = 0; i < CellsPerMessage; i++)
        {
            Check(_tunnel!.Relays[0].ProcessForward(message.Slice(i * CellSize, CellSize)));
        }
    }

    [Benchmark]
    public void RelayForwardBatch() => Check(_tunnel!.Relays[0].ProcessForwardCells(NextMessage()));

    [Benchmark]
    public int OriginOpenCellByCell()
    {
        var message = NextMessage();
        var total = 0;
        for (var i = 0; i < CellsPerMessage; i++)
        {
            total += Check(_tunnel!.Origin.OpenBackward(message.Slice(i * CellSize, CellSize), _plaintext));
        }

        return total;
    }

    [Benchmark]
    public int OriginOpenBatch()
    {
        var message = NextMessage();
        _tunnel!.Origin.PeelBackwardCells(message);
        var total = 0;
        for (var i = 0; i < CellsPerMessage; i++)
        {
            total += Check(_tunnel.Origin.OpenPeeledBackward(message.Slice(i * CellSize, CellSize), _plaintext));
        }

        return total;
    }

    private Span<byte> Message(int index) => _messages.AsSpan(index * CellsPerMessage * CellSize, CellsPerMessage * CellSize);

    private Span<byte> NextMessage() => Message(_next++);

    private static void Check(TunnelErrorKind error)
    {
        if (error != TunnelErrorKind.None)
        {
            throw new InvalidOperationException($"a cell was refused: {error}");
        }
    }

    private static int Check(OpenedCell opened) => opened.Type == CellType.Data
        ? opened.PayloadLength
        : throw new InvalidOperationException($"a cell was refused: {opened.Error}");
}
