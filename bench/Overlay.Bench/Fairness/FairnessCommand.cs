using System.Diagnostics;
using System.Globalization;
using System.Net;
using Overlay.Bench.Network;
using Overlay.Errors;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Overlay.Host;
using Overlay.Host.Options;
using Overlay.Host.Tunnels;
using Overlay.Onion;

namespace Overlay.Bench.Fairness;

/// <summary>
/// <c>fairness [--trips N] [--flood-streams S] [--shared]</c>: tunnels through one previous hop while
/// another floods the same node with headers, by default at ten times its concurrency (the rate each
/// reaches is measured and reported: the flood's is what the node lets it have). Two real nodes (the origin, 127.0.0.1, and
/// the target) run in this process; the flooder (<see cref="FloodCommand"/>, 127.0.0.2) runs in a
/// process of its own. By default this process is pinned to CPU 0 and the flooder to CPU 1, as if
/// the flooder were another machine: what is measured is then what the flood costs the node, not
/// what the flooder's own work takes from the cores they would otherwise share. <c>--shared</c>
/// leaves both on every core (what the hostile-peer test sees). Each setting runs quiet, flooded,
/// and quiet again, <see cref="Concurrency"/> one-byte round trips at a time over 0 relays (setup
/// dominates them).
/// </summary>
internal static class FairnessCommand
{
    public const int DefaultTrips = 400;
    public const int Concurrency = 4;
    public const int DefaultFloodStreams = 10 * Concurrency;
    private const string PinnedFlag = "--pinned";
    private static readonly IPAddress FloodSource = IPAddress.Parse("127.0.0.2");
    private static readonly TimeSpan TripDeadline = TimeSpan.FromSeconds(15);
    private static int s_warm;

    private static readonly Setting[] Settings =
    [
        new("shipped", new Dictionary<string, string?>()),
        new("per key only", new Dictionary<string, string?>
        {
            ["Overlay:Tunnels:HeadersPerSecond"] = "1000000",
        }),
        new("turns only", new Dictionary<string, string?>
        {
            ["Overlay:Tunnels:HeaderConcurrency"] = "1",
            ["Overlay:Tunnels:HeadersPerSecondPerPeer"] = "1000000",
            ["Overlay:Tunnels:HeadersPerSecond"] = "1000000",
            ["Overlay:Tunnels:HeaderBurstPerPeer"] = "1000000",
        }),
        new("wrong epoch", new Dictionary<string, string?>
        {
            ["Overlay:Tunnels:HeaderConcurrency"] = "1",
            ["Overlay:Tunnels:HeadersPerSecondPerPeer"] = "1000000",
            ["Overlay:Tunnels:HeadersPerSecond"] = "1000000",
            ["Overlay:Tunnels:HeaderBurstPerPeer"] = "1000000",
        }, WrongEpoch: true),
    ];

    public static async Task<int> RunAsync(string[] args, TextWriter log, CancellationToken cancellationToken)
    {
        var trips = DefaultTrips;
        var floodStreams = DefaultFloodStreams;
        var shared = false;
        var pinned = false;
        for (var i = 0; i < args.Length; i++)
        {
            var parsed = args[i] switch
            {
                "--trips" when i + 1 < args.Length => int.TryParse(args[++i], NumberStyles.None, CultureInfo.InvariantCulture, out trips) && trips >= 20,
                "--flood-streams" when i + 1 < args.Length => int.TryParse(args[++i], NumberStyles.None, CultureInfo.InvariantCulture, out floodStreams) && floodStreams > 0,
                "--shared" => shared = true,
                PinnedFlag => pinned = true,
                _ => false,
            };
            if (!parsed)
            {
                return 2;
            }
        }

        if (!shared && !pinned)
        {
            if (Environment.ProcessorCount < 2)
            {
                await log.WriteLineAsync("fairness: one CPU only: nothing to pin apart; run with --shared");
                return 2;
            }

            // The runtime sizes itself to the CPUs it starts on, so the pin is set before it starts.
            return await RunSelfAsync(["taskset", "-c", "0"], ["fairness", .. args, PinnedFlag], log, cancellationToken);
        }

        await log.WriteLineAsync("settings: shipped = the default limits (a flood past its burst is paced at its share of the node's header rate); per key only = each key paced at its own rate, nothing shared (the limits before the shared rate); turns only = HeaderConcurrency 1 and no header rate limit, so only the turns between sources keep it fair; wrong epoch = turns only, the flood's headers naming an epoch the node does not hold (refused before the agreement)");
        await log.WriteLineAsync("node CPU per flood stream: the nodes' process CPU time over the flooded phase, less the quiet phase's CPU per round trip for the round trips made, per flood stream answered");
        await log.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"fairness: {(shared ? "nodes and flooder share every CPU" : "nodes on CPU 0, the flooder on CPU 1")}; {trips} round trips per phase, {Concurrency} at a time; the flood {floodStreams} streams at a time"));
        var rows = new List<string>();
        foreach (var setting in Settings)
        {
            rows.Add(await MeasureSettingAsync(setting, trips, floodStreams, shared, log, cancellationToken));
        }

        await log.WriteLineAsync();
        await log.WriteLineAsync(Header);
        foreach (var row in rows)
        {
            await log.WriteLineAsync(row);
        }

        return 0;
    }

    private const string Header =
        "  setting        p50 quiet  p50 flooded (x)     p50 after  ok flooded  tunnels/s flooded  flood headers/s (x tunnels)  read past admission/s  node CPU per flood stream";

    private static async Task<string> MeasureSettingAsync(Setting setting, int trips, int floodStreams, bool shared, TextWriter log, CancellationToken cancellationToken)
    {
        var name = setting.Name;
        await using var cluster = await BenchCluster.StartAsync(2, TimeSpan.FromSeconds(60), cancellationToken, setting.Configuration);
        var origin = cluster[0].Node;
        var target = cluster[1].Node;
        // Warm-up: the first setting also brings the process's code to its final tier, so its quiet phase is like the others'.
        await MeasureAsync(origin, target, Interlocked.Exchange(ref s_warm, 1) == 0 ? Math.Max(trips, 2000) : trips / 4, cancellationToken);
        var cpuQuiet = CpuNow();
        var quiet = await MeasureAsync(origin, target, trips, cancellationToken);
        var cpuPerTrip = (CpuNow() - cpuQuiet) / quiet.Succeeded;

        var descriptor = target.State.Descriptor ?? throw new InvalidOperationException("the target has no descriptor");
        var epoch = setting.WrongEpoch ? descriptor.OnionEpoch + 1000 : descriptor.OnionEpoch;
        var flooder = Flooder.Start(shared, target.LinkEndpoint, epoch, OnionHeader.SizeFor(target.State.Network), floodStreams, FloodSource);
        FloodCount start, end;
        TimeSpan cpuStart, cpuEnd;
        Outcome flooded;
        try
        {
            // Measure only once the flood reaches the node and has spent its burst (from then on it is paced).
            var burst = target.Services.GetRequiredService<IOptions<OverlayOptions>>().Value.Tunnels.HeaderBurstPerPeer;
            start = await flooder.WaitForAsync(c => c.Processed >= Math.Min(burst, 10_000) + 100, TimeSpan.FromSeconds(60), cancellationToken);
            cpuStart = CpuNow();
            flooded = await MeasureAsync(origin, target, trips, cancellationToken);
            end = await flooder.WaitForAsync(c => c.Sent > start.Sent, TimeSpan.FromSeconds(60), cancellationToken);
            cpuEnd = CpuNow();
        }
        finally
        {
            await flooder.StopAsync();
        }

        var again = await MeasureAsync(origin, target, trips, cancellationToken);
        var seconds = (end.At - start.At).TotalSeconds;
        var floodRate = (end.Sent - start.Sent) / seconds;
        var cpuPerFlood = (cpuEnd - cpuStart - (cpuPerTrip * flooded.Succeeded)) / Math.Max(1, end.Sent - start.Sent);
        var row = string.Create(CultureInfo.InvariantCulture,
            $"  {name,-13} {quiet.P50Ms,7:F2} ms {flooded.P50Ms,7:F2} ms ({flooded.P50Ms / quiet.P50Ms,4:F2}x) {again.P50Ms,7:F2} ms {flooded.Succeeded,5}/{trips,-5} {flooded.PerSecond,10:F0} {floodRate,16:F0} ({floodRate / flooded.PerSecond,5:F1}x) {(end.Processed - start.Processed) / seconds,22:F0} {cpuPerFlood.TotalMicroseconds,20:F0} µs");
        await log.WriteLineAsync(Header);
        await log.WriteLineAsync(row);
        foreach (var (phase, outcome) in new[] { ("quiet", quiet), ("flooded", flooded), ("after", again) })
        {
            if (outcome.Failures.Length > 0)
            {
                await log.WriteLineAsync($"  {name} {phase}: typed failures {outcome.Failures}");
            }
        }

        return row;
    }

    private static async Task<Outcome> MeasureAsync(OverlayNode origin, OverlayNode target, int trips, CancellationToken cancellationToken)
    {
        var times = new List<double>(trips);
        var clockAll = Stopwatch.GetTimestamp();
        var failures = new System.Collections.Concurrent.ConcurrentBag<TunnelErrorKind>();
        var next = -1;
        var request = new byte[] { 1 };
        await Task.WhenAll(Enumerable.Range(0, Concurrency).Select(_ => Task.Run(async () =>
        {
            while (Interlocked.Increment(ref next) < trips)
            {
                using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                deadline.CancelAfter(TripDeadline);
                var clock = Stopwatch.GetTimestamp();
                try
                {
                    await origin.Tunnels.RoundTripAsync(new TunnelRequest { Destination = target.Id, Relays = 0 }, request, cancellationToken: deadline.Token);
                    lock (times)
                    {
                        times.Add(Stopwatch.GetElapsedTime(clock).TotalMilliseconds);
                    }
                }
                catch (TunnelException failure)
                {
                    failures.Add(failure.Kind);
                }
            }
        }, cancellationToken)));
        var elapsed = Stopwatch.GetElapsedTime(clockAll).TotalSeconds;
        times.Sort();
        var failed = string.Join(", ", failures.GroupBy(k => k).Select(g => $"{g.Key.ToTag()} {g.Count()}"));
        return new Outcome(times.Count, times.Count == 0 ? double.NaN : times[times.Count / 2], times.Count / elapsed, failed);
    }

    // Runs this program again under a launcher (taskset), forwarding its output.
    private static async Task<int> RunSelfAsync(string[] launcher, string[] args, TextWriter log, CancellationToken cancellationToken)
    {
        var start = SelfProcess.StartInfo(launcher, args);
        start.RedirectStandardOutput = true;
        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start the pinned run");
        while (await process.StandardOutput.ReadLineAsync(cancellationToken) is { } line)
        {
            await log.WriteLineAsync(line);
        }

        await process.WaitForExitAsync(cancellationToken);
        return process.ExitCode;
    }

    private static TimeSpan CpuNow()
    {
        using var self = Process.GetCurrentProcess();
        return self.TotalProcessorTime;
    }

    private sealed record Setting(string Name, Dictionary<string, string?> Configuration, bool WrongEpoch = false);

    private readonly record struct Outcome(int Succeeded, double P50Ms, double PerSecond, string Failures);
}
