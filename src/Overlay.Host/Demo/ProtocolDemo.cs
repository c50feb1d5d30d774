using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using Overlay.Cells;
using Overlay.Errors;
using Overlay.Identity;
using Overlay.Onion;
using Overlay.Protocol;

namespace Overlay.Host.Demo;

/// <summary>
/// The protocol without the network: one origin, R relays and a destination in this process.
/// Every step is the real code path (header build and processing, cell layers both ways); only
/// the links are array copies. It shows that sizes do not change along the route.
/// </summary>
internal static class ProtocolDemo
{
    public static int Run(IReadOnlyList<string> args, TextWriter output)
    {
        if (!DemoArguments.TryParse(args, out var options, out var problem))
        {
            Console.Error.WriteLine($"demo: {problem}");
            return 2;
        }

        var parameters = options.Parameters;
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Overlay protocol demo: {options.Relays} relays, MaxRelays {parameters.MaxRelays}, {parameters.CellSize}-byte cells, {parameters.Construction} construction, {options.Bytes:N0} bytes each way"));

        var nodes = Enumerable.Range(0, options.Relays + 1).Select(_ => DemoNode.Create(parameters)).ToArray();
        try
        {
            // A silent first tunnel so the timings below are not dominated by JIT compilation.
            return RunTunnel(parameters, nodes, Math.Min(options.Bytes, 1 << 16), TextWriter.Null) is var warm and not 0
                ? warm
                : RunTunnel(parameters, nodes, options.Bytes, output);
        }
        finally
        {
            foreach (var node in nodes)
            {
                node.Dispose();
            }
        }
    }

    private static int RunTunnel(NetworkParameters parameters, DemoNode[] nodes, int bytes, TextWriter output)
    {
        var relays = nodes.Length - 1;
        var rows = new HopRow[nodes.Length];
        var builder = new OnionHeaderBuilder(parameters);
        var header = new byte[builder.HeaderSize];
        var next = new byte[builder.HeaderSize];

        var clock = Stopwatch.StartNew();
        using var origin = new OriginCellCodec(parameters, builder.Build([.. nodes.Select(n => n.Hop)], TunnelMode.Duplex, DeadlineClass.Seconds30, header));
        var buildTime = clock.Elapsed;

        var relayCodecs = new RelayCellCodec[relays];
        DestinationCellCodec? destination = null;
        for (var i = 0; i < nodes.Length; i++)
        {
            clock.Restart();
            using var result = nodes[i].Processor.Process(header, next);
            var elapsed = clock.Elapsed;
            rows[i] = new HopRow { HeaderIn = header.Length, HeaderTime = elapsed, Outcome = result.Outcome };
            switch (result.Outcome)
            {
                case HeaderOutcome.Relay when i < relays && result.NextHop == nodes[i + 1].Id:
                    relayCodecs[i] = result.CreateRelayCodec(parameters);
                    rows[i].HeaderOut = next.Length;
                    (header, next) = (next, header);
                    break;
                case HeaderOutcome.Deliver when i == relays:
                    destination = result.CreateDestinationCodec(parameters);
                    break;
                default:
                    output.WriteLine($"hop {i + 1}: unexpected {result.Outcome} ({result.Rejection.ToTag()})");
                    return 1;
            }
        }

        var request = RandomNumberGenerator.GetBytes(bytes);
        var cellSize = parameters.CellSize;
        var plaintext = new byte[cellSize];

        // Forward: the origin seals, each relay peels, the destination opens.
        clock.Restart();
        var cells = Seal(request, origin.ForwardPayloadCapacity, cellSize, (type, payload, cell) => origin.SealForward(type, payload, cell));
        var originForward = clock.Elapsed;
        for (var i = 0; i < relays; i++)
        {
            clock.Restart();
            for (var offset = 0; offset < cells.Length; offset += cellSize)
            {
                var failure = relayCodecs[i].ProcessForward(cells.AsSpan(offset, cellSize));
                if (failure != TunnelErrorKind.None)
                {
                    output.WriteLine($"hop {i + 1}: forward cell refused ({failure.ToTag()})");
                    return 1;
                }
            }

            rows[i].Forward = (cells.Length / cellSize, clock.Elapsed);
        }

        clock.Restart();
        var received = Open(cells, cellSize, plaintext, cell => destination!.OpenForward(cell, plaintext), out var forwardError);
        rows[relays].Forward = (cells.Length / cellSize, clock.Elapsed);
        if (forwardError is not null || !received.AsSpan().SequenceEqual(request))
        {
            output.WriteLine($"destination: request {(forwardError is null ? "differs" : $"failed ({forwardError})")}");
            return 1;
        }

        // Backward: the destination replies with the bytes it got, each relay adds a layer, the origin peels them all.
        clock.Restart();
        var reply = Seal(received, destination!.BackwardPayloadCapacity, cellSize, (type, payload, cell) => destination.SealBackward(type, payload, cell));
        rows[relays].Backward = (reply.Length / cellSize, clock.Elapsed);
        for (var i = relays - 1; i >= 0; i--)
        {
            clock.Restart();
            for (var offset = 0; offset < reply.Length; offset += cellSize)
            {
                relayCodecs[i].ProcessBackward(reply.AsSpan(offset, cellSize));
            }

            rows[i].Backward = (reply.Length / cellSize, clock.Elapsed);
        }

        clock.Restart();
        var echoed = Open(reply, cellSize, plaintext, cell => origin.OpenBackward(cell, plaintext), out var backwardError);
        var originBackward = clock.Elapsed;
        if (backwardError is not null || !echoed.AsSpan().SequenceEqual(request))
        {
            output.WriteLine($"origin: reply {(backwardError is null ? "differs" : $"failed ({backwardError})")}");
            return 1;
        }

        Print(output, rows, relays, cellSize, buildTime, originForward, originBackward, cells.Length / cellSize, reply.Length / cellSize, bytes);
        foreach (var codec in relayCodecs)
        {
            codec.Dispose();
        }

        destination.Dispose();
        return 0;
    }

    private delegate void SealCell(CellType type, ReadOnlySpan<byte> payload, Span<byte> cell);

    // Cuts a message into Data cells and a final End cell (which may carry the last bytes).
    private static byte[] Seal(ReadOnlySpan<byte> message, int capacity, int cellSize, SealCell seal)
    {
        var count = Math.Max(1, (message.Length + capacity - 1) / capacity);
        var cells = new byte[count * cellSize];
        for (var i = 0; i < count; i++)
        {
            var chunk = message[(i * capacity)..Math.Min(message.Length, (i + 1) * capacity)];
            seal(i == count - 1 ? CellType.End : CellType.Data, chunk, cells.AsSpan(i * cellSize, cellSize));
        }

        return cells;
    }

    private static byte[] Open(byte[] cells, int cellSize, byte[] plaintext, Func<byte[], OpenedCell> open, out string? error)
    {
        using var message = new MemoryStream();
        var cell = new byte[cellSize];
        for (var offset = 0; offset < cells.Length; offset += cellSize)
        {
            cells.AsSpan(offset, cellSize).CopyTo(cell);
            var opened = open(cell);
            if (opened.IsError)
            {
                error = $"{opened.Error.ToTag()} at hop {opened.Hop}";
                return [];
            }

            message.Write(plaintext, OpenedCell.PayloadOffset, opened.PayloadLength);
            if (opened.Type == CellType.End)
            {
                error = offset + cellSize == cells.Length ? null : "cells after the end marker";
                return message.ToArray();
            }
        }

        error = "no end marker (truncated)";
        return [];
    }

    private static void Print(TextWriter output, HopRow[] rows, int relays, int cellSize, TimeSpan build, TimeSpan originForward,
        TimeSpan originBackward, int forwardCells, int backwardCells, int bytes)
    {
        var c = CultureInfo.InvariantCulture;
        output.WriteLine();
        output.WriteLine("hop  role          header in  header out  header µs   fwd cells  fwd bytes     fwd ms   bwd cells  bwd bytes     bwd ms");
        output.WriteLine(string.Create(c, $"{"0",-4} {"origin",-12}  {"-",9}  {rows[0].HeaderIn,10}  {build.TotalMicroseconds,9:F0}   {forwardCells,9}  {forwardCells * (long)cellSize,9}  {originForward.TotalMilliseconds,9:F2}   {backwardCells,9}  {backwardCells * (long)cellSize,9}  {originBackward.TotalMilliseconds,9:F2}"));
        for (var i = 0; i < rows.Length; i++)
        {
            var row = rows[i];
            var role = i < relays ? "relay" : "destination";
            var headerOut = row.HeaderOut == 0 ? "-" : row.HeaderOut.ToString(c);
            output.WriteLine(string.Create(c, $"{i + 1,-4} {role,-12}  {row.HeaderIn,9}  {headerOut,10}  {row.HeaderTime.TotalMicroseconds,9:F0}   {row.Forward.Cells,9}  {row.Forward.Cells * (long)cellSize,9}  {row.Forward.Time.TotalMilliseconds,9:F2}   {row.Backward.Cells,9}  {row.Backward.Cells * (long)cellSize,9}  {row.Backward.Time.TotalMilliseconds,9:F2}"));
        }

        var total = build + originForward + originBackward + rows.Aggregate(TimeSpan.Zero, (sum, r) => sum + r.HeaderTime + r.Forward.Time + r.Backward.Time);
        output.WriteLine();
        output.WriteLine(string.Create(c, $"round trip: {bytes:N0} bytes each way through {relays} relays verified; {total.TotalMilliseconds:F1} ms of crypto on one core ({2.0 * bytes / (1 << 20) / total.TotalSeconds:F0} MiB/s of payload)"));
        output.WriteLine("every hop saw the same header size and the same cell size in both directions.");
    }

    private struct HopRow
    {
        public int HeaderIn;
        public int HeaderOut;
        public TimeSpan HeaderTime;
        public HeaderOutcome Outcome;
        public (int Cells, TimeSpan Time) Forward;
        public (int Cells, TimeSpan Time) Backward;
    }

    private sealed class DemoNode : IDisposable
    {
        private DemoNode(NodeId id, OnionKeyRing ring, OnionHeaderProcessor processor)
        {
            Id = id;
            Ring = ring;
            Processor = processor;
        }

        public NodeId Id { get; }

        public OnionKeyRing Ring { get; }

        public OnionHeaderProcessor Processor { get; }

        public RouteHop Hop => new(Id, Ring.Current!.Epoch, Ring.Current.Key.PublicKey.ToArray());

        public static DemoNode Create(NetworkParameters parameters)
        {
            var now = DateTimeOffset.UtcNow;
            var ring = new OnionKeyRing();
            ring.Add(new OnionKeyEpoch(OnionKey.Create(1, now, now.AddDays(1)), new ReplayCache(1024)));
            return new DemoNode(new NodeId(RandomNumberGenerator.GetBytes(NodeId.Size)), ring, new OnionHeaderProcessor(parameters, ring));
        }

        public void Dispose() => Ring.Dispose();
    }
}

/// <summary>The demo's command line.</summary>
internal sealed record DemoArguments(int Relays, int Bytes, NetworkParameters Parameters)
{
    public static bool TryParse(IReadOnlyList<string> args, out DemoArguments options, out string? problem)
    {
        int relays = 6, bytes = 1 << 20, cellSize = NetworkParameters.DefaultCellSize;
        int? maxRelays = null;
        var construction = CellConstruction.Baseline;
        options = null!;
        for (var i = 0; i < args.Count; i++)
        {
            var value = i + 1 < args.Count ? args[i + 1] : null;
            var ok = args[i] switch
            {
                "--relays" => int.TryParse(value, CultureInfo.InvariantCulture, out relays) && relays >= 0,
                "--bytes" => int.TryParse(value, CultureInfo.InvariantCulture, out bytes) && bytes >= 0,
                "--cell-size" => int.TryParse(value, CultureInfo.InvariantCulture, out cellSize),
                "--max-relays" => int.TryParse(value, CultureInfo.InvariantCulture, out var m) && (maxRelays = m) is not null,
                "--construction" => TryParseConstruction(value, out construction),
                _ => false,
            };
            if (!ok)
            {
                problem = $"bad or unknown argument '{args[i]}{(value is null ? "" : " " + value)}'";
                return false;
            }

            i++;
        }

        var parameters = new NetworkParameters { MaxRelays = maxRelays ?? Math.Max(NetworkParameters.DefaultMaxRelays, relays), CellSize = cellSize, Construction = construction };
        problem = parameters.Validate();
        if (problem is null && relays > parameters.MaxRelays)
        {
            problem = $"--relays {relays} exceeds MaxRelays {parameters.MaxRelays}";
        }

        options = new DemoArguments(relays, bytes, parameters);
        return problem is null;
    }

    private static bool TryParseConstruction(string? value, out CellConstruction construction)
    {
        construction = value switch
        {
            "baseline" => CellConstruction.Baseline,
            "mac-array" => CellConstruction.MacArray,
            _ => 0,
        };
        return construction != 0;
    }
}
