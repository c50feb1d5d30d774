using BenchmarkDotNet.Attributes;
using Overlay.Identity;
using Overlay.Onion;
using Overlay.Protocol;

namespace Overlay.Bench;

/// <summary>A route length and the MaxRelays of its network (which fixes the header size).</summary>
public sealed record HeaderRoute(int Relays, int MaxRelays)
{
    public override string ToString() => $"{Relays} relays, max {MaxRelays}";
}

/// <summary>
/// The origin building a header, and one relay processing it. A hop refuses a header it has seen,
/// so each iteration processes a pool of distinct headers against a fresh replay cache: the job
/// runs exactly <see cref="HeadersPerIteration"/> invocations per iteration.
/// </summary>
// Benchmark classes and their parameter types are public and unsealed because BenchmarkDotNet
// generates code that derives from and sets them; everything else here is internal.
public class HeaderBenchmarks
{
    public const int HeadersPerIteration = 64;

    private NetworkParameters _parameters = NetworkParameters.Default;
    private BenchNode[] _nodes = [];
    private RouteHop[] _route = [];
    private OnionHeaderBuilder? _builder;
    private byte[][] _headers = [];
    private byte[] _output = [];
    private OnionHeaderProcessor? _processor;
    private int _next;

    public static IEnumerable<HeaderRoute> Routes => [new(3, 32), new(126, 126)];

    [ParamsSource(nameof(Routes))]
    public HeaderRoute Route { get; set; } = new(3, 32);

    [GlobalSetup]
    public void Setup()
    {
        _parameters = new NetworkParameters { MaxRelays = Route.MaxRelays };
        _nodes = BenchNode.Many(Route.Relays + 1);
        _route = [.. _nodes.Select(n => n.Hop)];
        _builder = new OnionHeaderBuilder(_parameters);
        _output = new byte[_builder.HeaderSize];
        _headers = new byte[HeadersPerIteration][];
        for (var i = 0; i < _headers.Length; i++)
        {
            _headers[i] = new byte[_builder.HeaderSize];
            _builder.Build(_route, TunnelMode.Duplex, DeadlineClass.Seconds30, _headers[i]).Dispose();
        }

        // The measured path must be the successful one: the first relay forwards to the second.
        ResetProcessor();
        using var result = _processor!.Process(_headers[0], _output);
        if (result.Outcome != HeaderOutcome.Relay || result.NextHop != _nodes[1].Id)
        {
            throw new InvalidOperationException($"setup: the first hop answered {result.Outcome} {result.Rejection}");
        }
    }

    [IterationSetup(Target = nameof(Process))]
    public void ResetProcessor()
    {
        _processor = _nodes[0].NewProcessor(_parameters, HeadersPerIteration);
        _next = 0;
    }

    [Benchmark]
    public int Build()
    {
        using var keys = _builder!.Build(_route, TunnelMode.Duplex, DeadlineClass.Seconds30, _output);
        return keys.HopCount;
    }

    [Benchmark]
    public NodeId Process()
    {
        using var result = _processor!.Process(_headers[_next++], _output);
        return result.Outcome == HeaderOutcome.Relay
            ? result.NextHop
            : throw new InvalidOperationException($"header {_next - 1}: {result.Outcome} {result.Rejection}");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var node in _nodes)
        {
            node.Dispose();
        }
    }
}
