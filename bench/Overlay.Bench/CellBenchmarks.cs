using BenchmarkDotNet.Attributes;
using Overlay.Cells;
using Overlay.Errors;
using Overlay.Onion;
using Overlay.Protocol;

namespace Overlay.Bench;

/// <summary>
/// The per-cell work of a tunnel through 3 relays, MaxRelays 32; one invocation is one full cell.
/// Opening and MAC checks need the exact cells the sender produced for each sequence number, so
/// every iteration opens a fresh tunnel and pre-generates <see cref="CellsPerIteration"/> cells
/// for the codec under test; the job runs exactly that many invocations per iteration. Each
/// benchmark checks its result, so a measured cell is always one that was accepted.
/// </summary>
public class CellBenchmarks
{
    /// <summary>At 16 KiB a batch is 16 MiB: small enough to stay in a large L3, as a just-received cell would be.</summary>
    public const int CellsPerIteration = 1024;

    public const int MaxRelays = 32;
    public const int Relays = 3;

    private NetworkParameters _parameters = NetworkParameters.Default;
    private BenchNode[] _nodes = [];
    private OnionHeaderProcessor[] _processors = [];
    private BenchTunnel? _tunnel;
    private byte[] _cells = [];
    private byte[] _plaintext = [];
    private byte[] _forwardPayload = [];
    private byte[] _backwardPayload = [];
    private int _next;

    [Params(CellConstruction.Baseline, CellConstruction.MacArray)]
    public CellConstruction Construction { get; set; }

    [Params(1024, 4096, 16384)]
    public int CellSize { get; set; }

    /// <summary>False for combinations the network refuses (MacArray at 1 KiB leaves too little payload).</summary>
    public static bool IsValid(CellConstruction construction, int cellSize) =>
        Parameters(construction, cellSize).Validate() is null;

    [GlobalSetup]
    public void Setup()
    {
        _parameters = Parameters(Construction, CellSize).EnsureValid();
        _nodes = BenchNode.Many(Relays + 1);
        _processors = [.. _nodes.Select(n => n.NewProcessor(_parameters, 1_000_000))];
        var layout = new CellLayout(_parameters);
        _cells = new byte[CellsPerIteration * CellSize];
        _plaintext = new byte[layout.PlaintextBufferSize];
        _forwardPayload = new byte[layout.ForwardPayloadCapacity];
        _backwardPayload = new byte[layout.BackwardPayloadCapacity];
        Random.Shared.NextBytes(_forwardPayload);
        Random.Shared.NextBytes(_backwardPayload);
    }

    [IterationSetup(Targets = [nameof(OriginSealForward), nameof(RelayProcessBackward), nameof(DestinationSealBackward)])]
    public void FreshTunnel()
    {
        _tunnel?.Dispose();
        _tunnel = BenchTunnel.Open(_parameters, _nodes, _processors);
        _next = 0;
    }

    [IterationSetup(Target = nameof(RelayProcessForward))]
    public void CellsForFirstRelay()
    {
        FreshTunnel();
        for (var i = 0; i < CellsPerIteration; i++)
        {
            _tunnel!.Origin.SealForward(CellType.Data, _forwardPayload, Cell(i));
        }
    }

    [IterationSetup(Target = nameof(DestinationOpenForward))]
    public void CellsForDestination()
    {
        FreshTunnel();
        for (var i = 0; i < CellsPerIteration; i++)
        {
            _tunnel!.Origin.SealForward(CellType.Data, _forwardPayload, Cell(i));
            foreach (var relay in _tunnel.Relays)
            {
                if (relay.ProcessForward(Cell(i)) != TunnelErrorKind.None)
                {
                    throw new InvalidOperationException($"setup: cell {i} refused by a relay");
                }
            }
        }
    }

    [IterationSetup(Target = nameof(OriginOpenBackward))]
    public void CellsForOrigin()
    {
        FreshTunnel();
        for (var i = 0; i < CellsPerIteration; i++)
        {
            _tunnel!.Destination.SealBackward(CellType.Data, _backwardPayload, Cell(i));
            for (var r = _tunnel.Relays.Length - 1; r >= 0; r--)
            {
                _tunnel.Relays[r].ProcessBackward(Cell(i));
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
    public void OriginSealForward() => _tunnel!.Origin.SealForward(CellType.Data, _forwardPayload, NextCell());

    [Benchmark]
    public void RelayProcessForward()
    {
        var error = _tunnel!.Relays[0].ProcessForward(NextCell());
        if (error != TunnelErrorKind.None)
        {
            throw new InvalidOperationException($"cell {_next - 1} refused: {error}");
        }
    }

    [Benchmark]
    public int DestinationOpenForward() => Check(_tunnel!.Destination.OpenForward(NextCell(), _plaintext));

    [Benchmark]
    public void RelayProcessBackward() => _tunnel!.Relays[0].ProcessBackward(NextCell());

    [Benchmark]
    public void DestinationSealBackward() => _tunnel!.Destination.SealBackward(CellType.Data, _backwardPayload, NextCell());

    [Benchmark]
    public int OriginOpenBackward() => Check(_tunnel!.Origin.OpenBackward(NextCell(), _plaintext));

    private static NetworkParameters Parameters(CellConstruction construction, int cellSize) =>
        new() { MaxRelays = MaxRelays, CellSize = cellSize, Construction = construction };

    private Span<byte> Cell(int index) => _cells.AsSpan(index * CellSize, CellSize);

    private Span<byte> NextCell() => Cell(_next++);

    private int Check(OpenedCell opened) => opened.Type == CellType.Data
        ? opened.PayloadLength
        : throw new InvalidOperationException($"cell {_next - 1} refused: {opened.Error}");
}
