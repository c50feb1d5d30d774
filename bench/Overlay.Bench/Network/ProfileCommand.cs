using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using Google.Protobuf;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Overlay.Bench.Network.Chain;
using Overlay.Host.Options;
using Overlay.Identity;

namespace Overlay.Bench.Network;

/// <summary>
/// <c>profile WORKLOAD [--relays N] [--seconds S]</c>: one workload of the network harness, alone
/// and in a loop, on a cluster just big enough for it, so that a CPU profiler attached to this
/// process (dotnet-trace) sees only that workload. Prints the process's CPU time per unit of work.
/// </summary>
internal static class ProfileCommand
{
    public static readonly string[] Workloads = ["tunnel", "chain", "tunnel-fresh", "chain-fresh", "tunnel-rtt", "chain-rtt", "tunnel-stream"];

    public static async Task<int> RunAsync(string workload, int relays, TimeSpan duration, bool phases, TextWriter log, CancellationToken cancellationToken)
    {
        // --phases: every span of the node's ActivitySource is timed, and the median per span name printed at the end.
        var spans = new ConcurrentDictionary<string, ConcurrentBag<double>>(StringComparer.Ordinal);
        using var listener = phases ? new ActivityListener
        {
            ShouldListenTo = source => source.Name == Host.Telemetry.OverlayTelemetry.Name,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllData,
            ActivityStopped = activity => spans.GetOrAdd(activity.OperationName, _ => []).Add(activity.Duration.TotalMilliseconds),
        } : null;
        if (listener is not null)
        {
            ActivitySource.AddActivityListener(listener);
        }

        await using var cluster = await BenchCluster.StartAsync(relays + 2, TimeSpan.FromSeconds(60), cancellationToken);
        var options = cluster[0].Node.Services.GetRequiredService<IOptions<OverlayOptions>>().Value;
        var messageBytes = options.Tunnels.MaxCellsPerMessage * options.Network.CellSize;
        NodeId[] route = [.. Enumerable.Range(1, relays + 1).Select(cluster.Id)];
        Uri[] hops = [.. Enumerable.Range(1, relays + 1).Select(cluster.Endpoint)];
        var ping = new byte[64];
        RandomNumberGenerator.Fill(ping);
        var payload = new byte[workload.EndsWith("-rtt", StringComparison.Ordinal) ? options.Network.CellSize : messageBytes];
        RandomNumberGenerator.Fill(payload);
        var message = new Chunk { Data = UnsafeByteOperations.UnsafeWrap(payload) };
        var origin = cluster[0].Node;
        var chain = cluster.Chain(0);
        const long echoBytes = 16L << 20;

        // One unit of work: how many KiB each way it moved (0 for fresh calls and round trips, counted per call).
        async Task<long> OnceAsync(CancellationToken token)
        {
            switch (workload)
            {
                case "tunnel":
                    await using (var tunnel = await Network.Workloads.OpenTunnelAsync(origin, route, token))
                    {
                        await Network.Workloads.TunnelEchoAsync(tunnel, echoBytes, complete: true, null, token);
                    }

                    return echoBytes;
                case "chain":
                    await Network.Workloads.ChainEchoAsync(chain, hops, echoBytes, messageBytes, token);
                    return echoBytes;
                case "tunnel-fresh":
                    await Network.Workloads.FreshTunnelFirstReplyAsync(origin, route, ping, token);
                    return 0;
                case "tunnel-stream":
                    for (var i = 0; i < 1000; i++)
                    {
                        await Network.Workloads.FreshTunnelFirstReplyAsync(origin, route, ping, token, reuse: true);
                    }

                    return 0;
                case "chain-fresh":
                    await Network.Workloads.FreshChainFirstReplyAsync(chain, hops, message, token);
                    return 0;
                case "tunnel-rtt":
                    await using (var tunnel = await Network.Workloads.OpenTunnelAsync(origin, route, token))
                    {
                        var buffer = new byte[4096];
                        for (var i = 0; i < 1000; i++)
                        {
                            await Network.Workloads.TunnelRoundTripAsync(tunnel, ping, buffer, token);
                        }

                        await Network.Workloads.CloseTunnelAsync(tunnel, token);
                    }

                    return 0;
                default:
                    var call = chain.Open(hops, token);
                    for (var i = 0; i < 1000; i++)
                    {
                        await Network.Workloads.ChainRoundTripAsync(call, message, token);
                    }

                    await Network.Workloads.CloseChainAsync(call, token);
                    return 0;
            }
        }

        log.WriteLine($"profile: {workload} through {relays} relays, warming up (pid {Environment.ProcessId})");
        for (var i = 0; i < 3; i++)
        {
            await OnceAsync(cancellationToken);
        }

        log.WriteLine($"profile: running for {duration.TotalSeconds:F0} s");
        var cpu = Environment.CpuUsage.TotalTime;
        var started = Stopwatch.GetTimestamp();
        var units = 0;
        var bytes = 0L;
        while (Stopwatch.GetElapsedTime(started) < duration)
        {
            bytes += await OnceAsync(cancellationToken);
            units++;
        }

        var elapsed = Stopwatch.GetElapsedTime(started);
        var cpuMicroseconds = (Environment.CpuUsage.TotalTime - cpu).TotalMicroseconds;
        log.WriteLine(bytes > 0
            ? string.Create(CultureInfo.InvariantCulture, $"profile: {units} runs, {bytes / elapsed.TotalSeconds / 1e6:F1} MB/s each way, {cpuMicroseconds / (bytes / 1024.0):F2} µs CPU per KiB each way")
            : string.Create(CultureInfo.InvariantCulture, $"profile: {units} runs, {elapsed.TotalMilliseconds / units / PerRun(workload):F3} ms each, {cpuMicroseconds / units / PerRun(workload):F1} µs CPU each"));
        if (phases)
        {
            foreach (var (name, durations) in spans.OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"span {name,-32} n={durations.Count,7} median {Measure.Median([.. durations]):F3} ms"));
            }
        }

        return 0;
    }

    // Round trips and streams run a thousand to a unit of work.
    private static int PerRun(string workload) => workload.EndsWith("-rtt", StringComparison.Ordinal) || workload == "tunnel-stream" ? 1000 : 1;
}
