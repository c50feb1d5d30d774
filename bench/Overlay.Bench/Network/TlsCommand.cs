using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using Google.Protobuf;
using Grpc.Health.V1;
using Microsoft.Extensions.DependencyInjection;
using Overlay.Bench.Network.Chain;
using Overlay.Host.Link;
using Overlay.Identity;
using Overlay.Testing.Cluster;

namespace Overlay.Bench.Network;

/// <summary>
/// <c>tls [--quick] [--json FILE]</c>: the same workloads on an h2c cluster and then on a TLS
/// cluster (node certificates both ways) in one run, side by side: tunnel and plain-chain
/// throughput and round-trip time over 3 relays, the first reply on a fresh tunnel over warm
/// links, and the cost of a new link connection (a fresh channel's first call against a second
/// call on it). See docs/benchmarks.md, "TLS links".
/// </summary>
internal static class TlsCommand
{
    private const int Nodes = 6;
    private const int Relays = 3;
    private const int PingBytes = 64;
    private static readonly string[] Modes = ["h2c", "tls"];

    public static async Task<int> RunAsync(bool quick, Report report, TextWriter log, CancellationToken cancellationToken)
    {
        var repeats = quick ? 3 : 7;
        var bytes = (quick ? 16L : 64L) << 20;
        var roundTrips = quick ? 200 : 1000;
        var fresh = quick ? 20 : 60;
        var connections = quick ? 40 : 200;
        report.Context["mode"] = quick ? "quick" : "full";
        report.Context["gc"] = Measure.GcDescription;
        foreach (var mode in Modes)
        {
            var scheme = mode == "tls" ? "https" : "http";
            Progress(log, $"{mode}: starting {Nodes} nodes");
            await using var cluster = await BenchCluster.StartAsync(Nodes, TimeSpan.FromSeconds(60), cancellationToken,
                new Dictionary<string, string?> { ["Overlay:Link:Url"] = $"{scheme}://127.0.0.1:0" });
            var origin = cluster[0].Node;
            NodeId[] route = [.. Enumerable.Range(1, Relays + 1).Select(cluster.Id)];
            Uri[] hops = [.. Enumerable.Range(1, Relays + 1).Select(cluster.Endpoint)];
            var section = $"TLS links: {mode}, {Relays} relays";

            // Warm: JIT, buffer pools and every connection on the path, unmeasured.
            await using (var warm = await Workloads.OpenTunnelAsync(origin, route, cancellationToken))
            {
                await Workloads.TunnelEchoAsync(warm, 8L << 20, complete: true, null, cancellationToken);
            }

            await Workloads.ChainEchoAsync(cluster.Chain(0), hops, 8L << 20, 8 * 4096, cancellationToken);

            Progress(log, $"{mode}: throughput, {repeats} runs of {bytes >> 20} MiB each way");
            var tunnelMbS = new List<double>();
            var chainMbS = new List<double>();
            for (var run = 0; run < repeats; run++)
            {
                await using (var tunnel = await Workloads.OpenTunnelAsync(origin, route, cancellationToken))
                {
                    tunnelMbS.Add(bytes / await Workloads.TunnelEchoAsync(tunnel, bytes, complete: true, null, cancellationToken) / 1e6);
                }

                chainMbS.Add(bytes / await Workloads.ChainEchoAsync(cluster.Chain(0), hops, bytes, 8 * 4096, cancellationToken) / 1e6);
            }

            Progress(log, $"{mode}: round trips, {repeats} runs of {roundTrips}");
            var tunnelRtt = new List<double>();
            var chainRtt = new List<double>();
            var ping = RandomNumberGenerator.GetBytes(PingBytes);
            var buffer = new byte[4096];
            var cell = new Chunk { Data = UnsafeByteOperations.UnsafeWrap(RandomNumberGenerator.GetBytes(4096)) };
            for (var run = 0; run < repeats; run++)
            {
                var tunnel = await Workloads.OpenTunnelAsync(origin, route, cancellationToken);
                var call = cluster.Chain(0).Open(hops, cancellationToken);
                var tunnelSamples = new List<double>(roundTrips);
                var chainSamples = new List<double>(roundTrips);
                for (var i = 0; i < roundTrips + 20; i++)
                {
                    var t = await Workloads.TunnelRoundTripAsync(tunnel, ping, buffer, cancellationToken);
                    var c = await Workloads.ChainRoundTripAsync(call, cell, cancellationToken);
                    if (i >= 20)
                    {
                        tunnelSamples.Add(t);
                        chainSamples.Add(c);
                    }
                }

                await Workloads.CloseTunnelAsync(tunnel, cancellationToken);
                await Workloads.CloseChainAsync(call, cancellationToken);
                tunnelRtt.Add(Measure.Median(tunnelSamples));
                chainRtt.Add(Measure.Median(chainSamples));
            }

            Progress(log, $"{mode}: {repeats} runs of {fresh} fresh tunnels over warm links");
            var firstReply = new List<double>();
            for (var run = 0; run < repeats; run++)
            {
                var samples = new List<double>(fresh);
                for (var i = 0; i < fresh; i++)
                {
                    samples.Add((await Workloads.FreshTunnelFirstReplyAsync(origin, route, ping, cancellationToken)).Total);
                }

                firstReply.Add(Measure.Median(samples));
            }

            Progress(log, $"{mode}: {connections} new link connections");
            var (newConnection, secondCall) = await NewConnectionsAsync(cluster, connections, cancellationToken);

            report.Add(section, $"tls.{mode}.tunnel_mb_s", "tunnel throughput each way", Measure.Median(tunnelMbS), "MB/s");
            report.Add(section, $"tls.{mode}.plain_chain_mb_s", "plain chain throughput each way", Measure.Median(chainMbS), "MB/s");
            report.Add(section, $"tls.{mode}.tunnel_rtt_p50_ms", "tunnel 64-byte round trip, p50", Measure.Median(tunnelRtt), "ms", "F3");
            report.Add(section, $"tls.{mode}.plain_chain_rtt_p50_ms", "plain chain 4096-byte round trip, p50", Measure.Median(chainRtt), "ms", "F3");
            report.Add(section, $"tls.{mode}.first_reply_p50_ms", "fresh tunnel, first reply (links warm), p50", Measure.Median(firstReply), "ms", "F3");
            report.Add(section, $"tls.{mode}.new_connection_call_p50_ms", "a new link connection's first call (health Check), p50", Measure.Median(newConnection), "ms", "F3");
            report.Add(section, $"tls.{mode}.second_call_p50_ms", "the next call on that connection, p50", Measure.Median(secondCall), "ms", "F3");
            report.Add(section, $"tls.{mode}.connection_setup_p50_ms", "connection set-up: first call minus second (TCP, HTTP/2, and TLS with both certificate checks)",
                Measure.Median(newConnection) - Measure.Median(secondCall), "ms", "F3");
            report.Runs($"tls.{mode}.tunnel_mb_s", tunnelMbS);
            report.Runs($"tls.{mode}.plain_chain_mb_s", chainMbS);
            report.Runs($"tls.{mode}.tunnel_rtt_p50_ms", tunnelRtt);
            report.Runs($"tls.{mode}.first_reply_p50_ms", firstReply);
        }

        var summary = "TLS links: side by side";
        foreach (var figure in new[] { "tunnel_mb_s", "plain_chain_mb_s", "tunnel_rtt_p50_ms", "plain_chain_rtt_p50_ms", "first_reply_p50_ms" })
        {
            report.Add(summary, $"tls.ratio.{figure}", $"{figure}: TLS / h2c", report.Value($"tls.tls.{figure}") / report.Value($"tls.h2c.{figure}"), "×", "F2");
        }

        report.Add(summary, "tls.handshake_ms", "handshake cost per new link connection: TLS set-up minus h2c set-up",
            report.Value("tls.tls.connection_setup_p50_ms") - report.Value("tls.h2c.connection_setup_p50_ms"), "ms", "F3");
        report.Note(summary, string.Create(CultureInfo.InvariantCulture,
            $"{Nodes} nodes in this process, h2c cluster first, then a TLS cluster (same settings, https link URLs). Medians over {repeats} runs; ")
            + "throughput: tunnel and plain chain in turn on the same 3 relays; round trips: tunnel and chain one at a time in turn; fresh tunnels reuse warm link connections; "
            + "a new link connection: the origin's own dial path (PeerChannels, policy and certificate checks) to node 1, one fresh channel per sample.");
        return 0;
    }

    // A fresh channel per sample through the node's own dialer: its first call pays TCP, HTTP/2 and (TLS) the handshake; the second does not.
    private static async Task<(List<double> First, List<double> Second)> NewConnectionsAsync(TestCluster cluster, int count, CancellationToken cancellationToken)
    {
        var channels = cluster[0].Services.GetRequiredService<PeerChannels>();
        var first = new List<double>(count);
        var second = new List<double>(count);
        for (var i = 0; i < count + 5; i++)
        {
            using var channel = channels.CreateTransient(cluster.Endpoint(1), cluster.Id(1));
            var health = new Health.HealthClient(channel);
            var started = Stopwatch.GetTimestamp();
            await health.CheckAsync(new HealthCheckRequest(), cancellationToken: cancellationToken);
            var f = Measure.Milliseconds(started);
            started = Stopwatch.GetTimestamp();
            await health.CheckAsync(new HealthCheckRequest(), cancellationToken: cancellationToken);
            if (i >= 5)
            {
                first.Add(f);
                second.Add(Measure.Milliseconds(started));
            }
        }

        return (first, second);
    }

    private static void Progress(TextWriter log, string message) =>
        log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[{DateTime.Now:HH:mm:ss}] {message}"));
}
