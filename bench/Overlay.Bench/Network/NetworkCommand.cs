using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Google.Protobuf;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Overlay.Bench.Network.Chain;
using Overlay.Host.Options;
using Overlay.Host.Tunnels;
using Overlay.Host;
using Overlay.Identity;
using Overlay.Onion;

namespace Overlay.Bench.Network;

/// <summary>How much of everything a run does.</summary>
internal sealed record NetworkSettings(bool Quick)
{
    /// <summary>The phases, in the order they run.</summary>
    public static readonly string[] AllPhases = ["streaming", "scale", "throughput", "latency", "first-reply", "streams"];

    /// <summary>The phases to run (<c>--only</c>); all by default.</summary>
    public IReadOnlySet<string> Phases { get; init; } = AllPhases.ToHashSet();

    public int Nodes => 20;

    public int Repeats => Quick ? 5 : 9;

    public int[] RelayCounts => [1, 3, 6];

    public int ThroughputRepeats => Quick ? 5 : 15;

    public long ThroughputBytes => (Quick ? 16L : 64L) << 20;

    public int RoundTrips => Quick ? 200 : 1000;

    public int FreshCalls => Quick ? 20 : 60;

    public int ScaleTunnels => 1000;

    public int ScaleRelays => 3;

    public long ScaleBytesPerTunnel => (Quick ? 64L : 256L) << 10;

    public long StreamingBytes => Quick ? 256L << 20 : 1L << 30;
}

/// <summary>
/// <c>network [--quick] [--json FILE]</c>: real nodes in this process, tunnels against a plain
/// gRPC pass-through chain on the same nodes, same Kestrel and client settings. See
/// docs/benchmarks.md, "Network harness".
/// </summary>
internal sealed class NetworkCommand
{
    private const int LatencyRelays = 3;
    private const int PingBytes = 64;

    private readonly NetworkSettings _settings;
    private readonly Report _report;
    private readonly TextWriter _log;
    private readonly CancellationToken _cancellationToken;
    private TestCluster? _cluster;
    private int _linkMessageBytes;
    private int _cellBytes;
    private int _tunnelWriteBytes;

    private NetworkCommand(NetworkSettings settings, Report report, TextWriter log, CancellationToken cancellationToken)
    {
        _settings = settings;
        _report = report;
        _log = log;
        _cancellationToken = cancellationToken;
    }

    private TestCluster Cluster => _cluster ?? throw new InvalidOperationException("the cluster has not started");

    public static async Task<int> RunAsync(NetworkSettings settings, Report report, TextWriter log, CancellationToken cancellationToken)
    {
        var command = new NetworkCommand(settings, report, log, cancellationToken);
        var clock = Stopwatch.StartNew();
        try
        {
            await command.RunPhasesAsync();
        }
        finally
        {
            if (command._cluster is { } cluster)
            {
                await cluster.DisposeAsync();
            }
        }

        report.Add("Run", "run.seconds", "network phases, wall clock", clock.Elapsed.TotalSeconds, "s");
        return report.Value("scale.failures") is 0 or double.NaN ? 0 : 1;
    }

    private async Task RunPhasesAsync()
    {
        _report.Context["mode"] = _settings.Quick ? "quick" : "full";
        _report.Context["machine"] = $"{Environment.ProcessorCount} cores, {RuntimeInformation.OSDescription}, {RuntimeInformation.FrameworkDescription}";
        _report.Context["gc"] = Measure.GcDescription;
        _report.Context["telemetry"] = Measure.TelemetryDescription([]);
        var started = Stopwatch.GetTimestamp();
        Progress($"starting {_settings.Nodes} nodes");
        _cluster = await BenchCluster.StartAsync(_settings.Nodes, TimeSpan.FromSeconds(60), _cancellationToken);
        _report.Add("Run", "run.cluster_start_seconds", $"{_settings.Nodes} nodes started and directory converged (200 ms gossip, then paused)", Stopwatch.GetElapsedTime(started).TotalSeconds, "s", "F2");

        var options = Cluster[0].Node.Services.GetRequiredService<IOptions<OverlayOptions>>().Value;
        _cellBytes = options.Network.CellSize;
        _linkMessageBytes = options.Tunnels.MaxCellsPerMessage * _cellBytes;
        _report.Context["node settings"] = string.Create(CultureInfo.InvariantCulture,
            $"cell {_cellBytes} B, {options.Tunnels.MaxCellsPerMessage} cells per link message ({_linkMessageBytes} B), construction {options.Network.Construction}, "
            + $"stream window {options.Link.StreamWindowBytes} B, connection window {(long)options.Link.MaxStreamsPerConnection * options.Link.StreamWindowBytes} B, "
            + $"{options.Link.MaxStreamsPerConnection} streams per connection, MaxActiveTunnels {options.Tunnels.MaxActiveTunnels} (node defaults, unchanged)");

        await WarmUpAsync();
        var phases = new Dictionary<string, Func<Task>>
        {
            ["streaming"] = StreamingMemoryAsync,
            ["scale"] = ScaleAsync,
            ["throughput"] = ThroughputAsync,
            ["latency"] = LatencyAsync,
            ["first-reply"] = FirstReplyAsync,
            ["streams"] = StreamsAsync,
        };
        foreach (var phase in NetworkSettings.AllPhases.Where(_settings.Phases.Contains))
        {
            await phases[phase]();
        }
    }

    private void Progress(string message) =>
        _log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[{DateTime.Now:HH:mm:ss}] {message}"));

    private NodeId[] Route(int relays, int first = 1) => [.. Enumerable.Range(first, relays + 1).Select(Cluster.Id)];

    private Uri[] Hops(int relays, int first = 1) => [.. Enumerable.Range(first, relays + 1).Select(Cluster.Endpoint)];

    private Chunk Message(int bytes)
    {
        var payload = new byte[bytes];
        RandomNumberGenerator.Fill(payload);
        return new Chunk { Data = UnsafeByteOperations.UnsafeWrap(payload) };
    }

    // Enough for the tiered JIT to finish optimising both paths: with 4 MiB per path the CPU cost per KiB
    // still fell by half over the first measured runs (more on the tunnel's path), and the first
    // throughput ratios came out 0.1-0.2 low; with 32 MiB or more the runs are flat.
    private const long WarmBytes = 32L << 20;

    // JIT, connection set-up and buffer pools on the paths the phases use, unmeasured.
    private async Task WarmUpAsync()
    {
        Progress("warming up");
        var origin = Cluster[0].Node;
        foreach (var relays in _settings.RelayCounts)
        {
            await using var tunnel = await Workloads.OpenTunnelAsync(origin, Route(relays), _cancellationToken);
            _tunnelWriteBytes = tunnel.PreferredWriteSize;
            await Workloads.TunnelEchoAsync(tunnel, WarmBytes, complete: true, null, _cancellationToken);
            await Workloads.ChainEchoAsync(Cluster.Chain(0), Hops(relays), WarmBytes, _linkMessageBytes, _cancellationToken);
        }

        await Workloads.ChainEchoAsync(Cluster.Chain(0), Hops(0), WarmBytes, _linkMessageBytes, _cancellationToken);
    }

    // 1 GiB (quick: 256 MiB) each way through 3 relays, after a full GC: peak working-set growth, and the live heap mid-stream.
    private async Task StreamingMemoryAsync()
    {
        const string section = "Memory while streaming through 3 relays";
        var bytes = _settings.StreamingBytes;
        Progress($"streaming {bytes >> 20} MiB each way through 3 relays");
        var before = Measure.Settle();
        var during = default(MemorySnapshot);
        double seconds;
        long peak;
        await using (var tunnel = await Workloads.OpenTunnelAsync(Cluster[0].Node, Route(3), _cancellationToken))
        {
            await using var sampler = new PeakWorkingSet();
            var received = 0L;
            var sampled = false;
            var paused = 0.0;
            seconds = await Workloads.TunnelEchoAsync(tunnel, bytes, complete: true, read =>
            {
                received += read;
                if (!sampled && received >= bytes / 2)
                {
                    // Halfway: what the process holds with the tunnel in full flow (one full GC, in the reader's loop).
                    sampled = true;
                    var pause = Stopwatch.GetTimestamp();
                    during = Measure.Settle();
                    paused = Stopwatch.GetElapsedTime(pause).TotalSeconds;
                }
            }, _cancellationToken);
            seconds -= paused;
            peak = sampler.Peak;
        }

        var after = Measure.Settle();
        _report.Add(section, "streaming.bytes_each_way_mib", "bytes each way (echoed by the destination)", bytes / Measure.MiB, "MiB", "F0");
        _report.Add(section, "streaming.tunnel_mb_s", "throughput each way (excluding the full GC taken halfway)", bytes / seconds / 1e6, "MB/s");
        _report.Add(section, "streaming.peak_working_set_growth_mib", "peak working-set growth over the settled process before", (peak - before.WorkingSetBytes) / Measure.MiB, "MiB");
        _report.Add(section, "streaming.working_set_before_mib", "working set before (after a full GC)", before.WorkingSetBytes / Measure.MiB, "MiB");
        _report.Add(section, "streaming.managed_heap_before_mib", "managed heap after a full GC: before", before.ManagedBytes / Measure.MiB, "MiB");
        _report.Add(section, "streaming.managed_heap_during_mib", "managed heap after a full GC: halfway, tunnel in flow", during.ManagedBytes / Measure.MiB, "MiB");
        _report.Add(section, "streaming.managed_heap_after_mib", "managed heap after a full GC: after the tunnel closed", after.ManagedBytes / Measure.MiB, "MiB");
        _report.Note(section, $"Whole process (20 nodes and the origin in one process). GC: {Measure.GcDescription}."
            + (_settings.Quick ? " Quick mode streams 256 MiB; the target is stated for 1 GiB (full mode)." : ""));
        _report.AddTarget("streaming.peak_working_set_growth_mib", "streaming 1 GiB through 3 relays grows the process by < 64 MiB", atMost: true, 64);
    }

    // 1,000 concurrent 3-relay tunnels over 20 nodes. Warm-up: a 0-relay tunnel from every node to every other one opens
    // the pooled link connection of each ordered pair (the ones tunnel hops use), and 50 3-relay tunnels run the code
    // paths; the process never held many tunnels before the measured round, so its working set is not already grown.
    private async Task ScaleAsync()
    {
        const string section = "Scale: 1,000 concurrent 3-relay tunnels over 20 nodes";
        Progress("scale: warming the link connections of every pair of nodes");
        var count = Cluster.Nodes.Count;
        var pairs = Enumerable.Range(0, count).SelectMany(i => Enumerable.Range(0, count).Where(j => j != i).Select(j => (i, new[] { Cluster.Id(j) }))).ToArray();
        var random = new Random(20261124);
        var routes = Enumerable.Range(0, _settings.ScaleTunnels).Select(i => ScaleRoute(random, i)).ToArray();
        var warm = await ScaleRoundAsync([.. pairs, .. routes.Take(50)], measured: false, bytesPerTunnel: 0);
        if (warm.Failures > 0)
        {
            throw new InvalidOperationException($"{warm.Failures} tunnels failed while warming up");
        }

        Progress($"scale: opening {_settings.ScaleTunnels} tunnels");
        var result = await ScaleRoundAsync(routes, measured: true, _settings.ScaleBytesPerTunnel);

        var perRelay = (double)_settings.ScaleTunnels * _settings.ScaleRelays;
        double PerRelay(long bytes) => bytes / perRelay / 1024;
        _report.Add(section, "scale.tunnels", "tunnels open at once", _settings.ScaleTunnels, "", "F0");
        _report.Add(section, "scale.failures", "failures (open, round trip, streaming, close)", result.Failures, "", "F0");
        _report.Add(section, "scale.open_all_seconds", "time to open all, each after its first 64-byte round trip", result.OpenSeconds, "s", "F2");
        _report.Add(section, "scale.throughput_mb_s", $"aggregate throughput, {_settings.ScaleBytesPerTunnel >> 10} KiB each way per tunnel, all at once", result.ThroughputMbS, "MB/s");
        _report.Add(section, "scale.idle.managed_kib_per_tunnel_per_relay", "idle: managed heap after a full GC, per tunnel per relay", PerRelay(result.Idle.ManagedBytes - result.Before.ManagedBytes), "KiB");
        _report.Add(section, "scale.idle.working_set_kib_per_tunnel_per_relay", "idle: working set, per tunnel per relay", PerRelay(result.Idle.WorkingSetBytes - result.Before.WorkingSetBytes), "KiB");
        _report.Add(section, "scale.idle.gc_committed_kib_per_tunnel_per_relay", "idle: GC committed memory, per tunnel per relay", PerRelay(result.Idle.GcCommittedBytes - result.Before.GcCommittedBytes), "KiB");
        _report.Add(section, "scale.idle_from_fresh.managed_kib_per_tunnel_per_relay", "idle, over the process before the warm-up round (no pair connection, no pool grown by 430 tunnels): managed heap, per tunnel per relay", PerRelay(result.Idle.ManagedBytes - warm.Before.ManagedBytes), "KiB");
        _report.Add(section, "scale.idle_from_fresh.working_set_kib_per_tunnel_per_relay", "idle, over the process before the warm-up round: working set, per tunnel per relay", PerRelay(result.Idle.WorkingSetBytes - warm.Before.WorkingSetBytes), "KiB");
        _report.Add(section, "scale.streaming.managed_kib_per_tunnel_per_relay", "streaming: managed heap after a full GC (halfway), per tunnel per relay", PerRelay(result.Streaming.ManagedBytes - result.Before.ManagedBytes), "KiB");
        _report.Add(section, "scale.streaming.working_set_kib_per_tunnel_per_relay", "streaming: peak working set, per tunnel per relay", PerRelay(result.StreamingPeakWorkingSet - result.Before.WorkingSetBytes), "KiB");
        _report.Add(section, "scale.before.managed_mib", "before: managed heap after a full GC (nodes started and warmed)", result.Before.ManagedBytes / Measure.MiB, "MiB");
        _report.Add(section, "scale.before.working_set_mib", "before: working set", result.Before.WorkingSetBytes / Measure.MiB, "MiB");
        _report.Add(section, "scale.before.gc_committed_mib", "before: GC committed memory", result.Before.GcCommittedBytes / Measure.MiB, "MiB");
        _report.Note(section, "Memory is measured process-wide (every node, the origins and the destinations share this process) "
            + $"and divided by tunnels × relays ({_settings.ScaleTunnels} × {_settings.ScaleRelays}), so each relay's share also carries "
            + "the origin's and the destination's state of the tunnel: an upper bound for a relay. Idle = every tunnel open after one round trip. "
            + "The working set includes what the GC keeps committed after collecting the garbage of opening (GC committed row). "
            + $"Origins rotate over the 20 nodes; relays and destination are 4 other nodes drawn at random (fixed seed). "
            + "Throughput excludes the pause of the full GC taken halfway. "
            + $"No limit was changed: the node's defaults allow this (MaxActiveTunnels 10,000 per node, 256 streams per connection, a second connection beyond). GC: {Measure.GcDescription}.");
        _report.AddTarget("scale.failures", "1,000 concurrent tunnels: no failure", atMost: true, 0);
        _report.AddTarget("scale.idle.working_set_kib_per_tunnel_per_relay", "memory per tunnel per relay, 1,000 idle tunnels ≤ 64 KiB (working set)", atMost: true, 64);
        _report.AddTarget("scale.idle.managed_kib_per_tunnel_per_relay", "memory per tunnel per relay, 1,000 idle tunnels ≤ 64 KiB (managed heap)", atMost: true, 64);
    }

    private (int Origin, NodeId[] Route) ScaleRoute(Random random, int index)
    {
        var origin = index % Cluster.Nodes.Count;
        var others = Enumerable.Range(0, Cluster.Nodes.Count).Where(n => n != origin).ToArray();
        random.Shuffle(others);
        return (origin, [.. others.Take(_settings.ScaleRelays + 1).Select(Cluster.Id)]);
    }

    private sealed record ScaleResult(int Failures, double OpenSeconds, double ThroughputMbS, MemorySnapshot Before, MemorySnapshot Idle,
        MemorySnapshot Streaming, long StreamingPeakWorkingSet);

    private async Task<ScaleResult> ScaleRoundAsync((int Origin, NodeId[] Route)[] routes, bool measured, long bytesPerTunnel)
    {
        var failures = 0;
        var before = Measure.Settle();
        var ping = new byte[PingBytes];
        RandomNumberGenerator.Fill(ping);
        var started = Stopwatch.GetTimestamp();
        var tunnels = await Task.WhenAll(routes.Select(async r =>
        {
            try
            {
                var tunnel = await Workloads.OpenTunnelAsync(Cluster[r.Origin].Node, r.Route, _cancellationToken);
                await Workloads.TunnelRoundTripAsync(tunnel, ping, new byte[4096], _cancellationToken);
                return tunnel;
            }
            catch (Exception exception) when (!_cancellationToken.IsCancellationRequested)
            {
                Interlocked.Increment(ref failures);
                Progress($"scale: a tunnel failed to open: {exception.Message}");
                return null;
            }
        }));
        var openSeconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        var idle = Measure.Settle();

        var open = tunnels.OfType<OverlayTunnel>().ToArray();
        if (bytesPerTunnel == 0)
        {
            await CloseAllAsync(open, () => Interlocked.Increment(ref failures));
            return new ScaleResult(failures, openSeconds, double.NaN, before, idle, default, 0);
        }

        var total = (long)open.Length * bytesPerTunnel;
        var received = 0L;
        var halfway = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var streaming = default(MemorySnapshot);
        var paused = 0.0;
        long peak;
        started = Stopwatch.GetTimestamp();
        await using (var sampler = new PeakWorkingSet())
        {
            var flows = Task.WhenAll(open.Select(async tunnel =>
            {
                try
                {
                    await Workloads.TunnelEchoAsync(tunnel, bytesPerTunnel, complete: false, read =>
                    {
                        if (Interlocked.Add(ref received, read) >= total / 2)
                        {
                            halfway.TrySetResult();
                        }
                    }, _cancellationToken);
                }
                catch (Exception exception) when (!_cancellationToken.IsCancellationRequested)
                {
                    Interlocked.Increment(ref failures);
                    Progress($"scale: a tunnel failed while streaming: {exception.Message}");
                }
            }));
            if (measured && await Task.WhenAny(halfway.Task, flows) == halfway.Task)
            {
                var pause = Stopwatch.GetTimestamp();
                streaming = Measure.Settle();
                paused = Stopwatch.GetElapsedTime(pause).TotalSeconds;
            }

            await flows;
            peak = sampler.Peak;
        }

        var streamSeconds = Stopwatch.GetElapsedTime(started).TotalSeconds - paused;
        await CloseAllAsync(open, () => Interlocked.Increment(ref failures));
        Progress(string.Create(CultureInfo.InvariantCulture, $"scale: opened in {openSeconds:F2} s, streamed in {streamSeconds:F2} s, {failures} failures"));
        return new ScaleResult(failures, openSeconds, total / streamSeconds / 1e6, before, idle, streaming, peak);
    }

    private Task CloseAllAsync(OverlayTunnel[] tunnels, Action failed) => Task.WhenAll(tunnels.Select(async tunnel =>
    {
        try
        {
            await Workloads.CloseTunnelAsync(tunnel, _cancellationToken);
        }
        catch (Exception exception) when (!_cancellationToken.IsCancellationRequested)
        {
            failed();
            Progress($"scale: a tunnel failed to close: {exception.Message}");
        }
    }));

    // Bulk echo through tunnels of 1, 3 and 6 relays and through the plain chain on the same nodes; a plain stream with no relay.
    // Wall-clock MB/s on a shared machine is noisy, so each run also records the process's CPU time per KiB moved.
    private async Task ThroughputAsync()
    {
        const string section = "Throughput (bulk echo, each way)";
        var bytes = _settings.ThroughputBytes;
        var repeats = _settings.ThroughputRepeats;
        var plainStream = new List<double>();
        var plainStreamCpu = new List<double>();
        var tunnel = _settings.RelayCounts.ToDictionary(r => r, _ => new List<double>());
        var chain = _settings.RelayCounts.ToDictionary(r => r, _ => new List<double>());
        var ratios = _settings.RelayCounts.ToDictionary(r => r, _ => new List<double>());
        var tunnelCpu = _settings.RelayCounts.ToDictionary(r => r, _ => new List<double>());
        var chainCpu = _settings.RelayCounts.ToDictionary(r => r, _ => new List<double>());
        var tunnelAllocated = _settings.RelayCounts.ToDictionary(r => r, _ => new List<double>());
        var chainAllocated = _settings.RelayCounts.ToDictionary(r => r, _ => new List<double>());
        double CpuMicrosecondsPerKib(TimeSpan before) => (Environment.CpuUsage.TotalTime - before).TotalMicroseconds / (bytes / 1024.0);
        double AllocatedPerKib(long before) => (GC.GetTotalAllocatedBytes() - before) / (bytes / 1024.0);
        for (var repeat = 0; repeat < repeats; repeat++)
        {
            Progress($"throughput: run {repeat + 1} of {repeats}, {bytes >> 20} MiB each way per measurement");
            var cpu = Environment.CpuUsage.TotalTime;
            plainStream.Add(bytes / await Workloads.ChainEchoAsync(Cluster.Chain(0), Hops(0), bytes, _linkMessageBytes, _cancellationToken) / 1e6);
            plainStreamCpu.Add(CpuMicrosecondsPerKib(cpu));
            foreach (var relays in _settings.RelayCounts)
            {
                // Alternate which goes first, so a slow moment of the shared machine does not always hit the same side.
                double t = 0, c = 0;
                for (var side = 0; side < 2; side++)
                {
                    if ((side == 0) == (repeat % 2 == 0))
                    {
                        await using var open = await Workloads.OpenTunnelAsync(Cluster[0].Node, Route(relays), _cancellationToken);
                        cpu = Environment.CpuUsage.TotalTime;
                        var allocated = GC.GetTotalAllocatedBytes();
                        t = bytes / await Workloads.TunnelEchoAsync(open, bytes, complete: true, null, _cancellationToken) / 1e6;
                        tunnelCpu[relays].Add(CpuMicrosecondsPerKib(cpu));
                        tunnelAllocated[relays].Add(AllocatedPerKib(allocated));
                    }
                    else
                    {
                        cpu = Environment.CpuUsage.TotalTime;
                        var allocated = GC.GetTotalAllocatedBytes();
                        c = bytes / await Workloads.ChainEchoAsync(Cluster.Chain(0), Hops(relays), bytes, _linkMessageBytes, _cancellationToken) / 1e6;
                        chainCpu[relays].Add(CpuMicrosecondsPerKib(cpu));
                        chainAllocated[relays].Add(AllocatedPerKib(allocated));
                    }
                }

                tunnel[relays].Add(t);
                chain[relays].Add(c);
                ratios[relays].Add(t / c);
            }
        }

        var stream = Measure.Median(plainStream);
        _report.Add(section, "throughput.plain_stream.mb_s", "plain gRPC stream between two nodes (0 relays)", stream, "MB/s");
        _report.Add(section, "throughput.plain_stream.cpu_us_per_kib", "plain stream, process CPU per KiB each way", Measure.Median(plainStreamCpu), "µs/KiB", "F2");
        _report.Runs("throughput.plain_stream.mb_s", plainStream);
        foreach (var relays in _settings.RelayCounts)
        {
            var key = $"throughput.relays{relays}";
            _report.Add(section, $"{key}.tunnel_mb_s", $"tunnel, {relays} relays", Measure.Median(tunnel[relays]), "MB/s");
            _report.Add(section, $"{key}.plain_chain_mb_s", $"plain chain, {relays} relays", Measure.Median(chain[relays]), "MB/s");
            _report.Add(section, $"{key}.ratio_to_plain_chain", $"tunnel / plain chain, {relays} relays (median of per-run ratios; range {ratios[relays].Min():F2}–{ratios[relays].Max():F2})", Measure.Median(ratios[relays]), "×", "F2");
            _report.Add(section, $"{key}.ratio_to_plain_stream", $"tunnel / plain stream, {relays} relays", Measure.Median(tunnel[relays]) / stream, "×", "F2");
            _report.Add(section, $"{key}.tunnel_cpu_us_per_kib", $"tunnel, {relays} relays, process CPU per KiB each way", Measure.Median(tunnelCpu[relays]), "µs/KiB", "F2");
            _report.Add(section, $"{key}.plain_chain_cpu_us_per_kib", $"plain chain, {relays} relays, process CPU per KiB each way", Measure.Median(chainCpu[relays]), "µs/KiB", "F2");
            _report.Add(section, $"{key}.cpu_ratio_to_plain_chain", $"CPU per byte, tunnel / plain chain, {relays} relays", Measure.Median(tunnelCpu[relays]) / Measure.Median(chainCpu[relays]), "×", "F2");
            _report.Add(section, $"{key}.tunnel_allocated_bytes_per_kib", $"tunnel, {relays} relays, bytes allocated per KiB each way", Measure.Median(tunnelAllocated[relays]), "B/KiB", "F0");
            _report.Add(section, $"{key}.plain_chain_allocated_bytes_per_kib", $"plain chain, {relays} relays, bytes allocated per KiB each way", Measure.Median(chainAllocated[relays]), "B/KiB", "F0");
            _report.Runs($"{key}.tunnel_mb_s", tunnel[relays]);
            _report.Runs($"{key}.plain_chain_mb_s", chain[relays]);
            _report.Runs($"{key}.ratio_to_plain_chain", ratios[relays]);
            _report.Runs($"{key}.tunnel_cpu_us_per_kib", tunnelCpu[relays]);
            _report.Runs($"{key}.plain_chain_cpu_us_per_kib", chainCpu[relays]);
            _report.AddTarget($"{key}.ratio_to_plain_chain", $"tunnel throughput ≥ 0.90 × plain chain, {relays} relays", atMost: false, 0.90);
        }

        _report.Note(section,
            $"{bytes >> 20} MiB each way per measurement, echoed by the destination (the tunnel's default echo handler, the chain's last hop) while the origin writes; "
            + $"MB/s = 10^6 payload bytes per second each way; medians of {repeats} runs. Link messages of {_linkMessageBytes} B on both: "
            + $"the tunnel's carry {_tunnelWriteBytes} B of payload (cell overhead is the rest), the chain's {_linkMessageBytes} B. "
            + "Each ratio pairs a tunnel run with the chain run next to it (alternating which goes first) and reports the median of those ratios. "
            + "CPU per KiB is the whole process's CPU time (user + system, every node) over the run divided by the KiB sent each way: "
            + "less sensitive than MB/s to other work on the machine. Bytes allocated per KiB count every managed allocation in the process during the run "
            + "(each link message is parsed into a fresh array at every hop, on both: about 1,024 B/KiB per hop and direction is that copy).");
    }

    // 64-byte round trips over an established 3-relay tunnel against round trips of the tunnel's wire size (one cell) through the chain.
    private async Task LatencyAsync()
    {
        const string section = "Latency over an established 3-relay path";
        var tunnelP50 = new List<double>();
        var tunnelP99 = new List<double>();
        var chainP50 = new List<double>();
        var chainP99 = new List<double>();
        var ping = new byte[PingBytes];
        RandomNumberGenerator.Fill(ping);
        var buffer = new byte[4096];
        var message = Message(_cellBytes);
        var ratios = new List<double>();
        for (var repeat = 0; repeat < _settings.Repeats; repeat++)
        {
            Progress($"latency: run {repeat + 1} of {_settings.Repeats}, {_settings.RoundTrips} round trips each, interleaved");
            var tunnel = await Workloads.OpenTunnelAsync(Cluster[0].Node, Route(LatencyRelays), _cancellationToken);
            var call = Cluster.Chain(0).Open(Hops(LatencyRelays), _cancellationToken);
            for (var i = 0; i < 20; i++)
            {
                await Workloads.TunnelRoundTripAsync(tunnel, ping, buffer, _cancellationToken);
                await Workloads.ChainRoundTripAsync(call, message, _cancellationToken);
            }

            // One round trip of each in turn (alternating which goes first), so a busy moment of the machine hits both alike.
            var tunnelSamples = new List<double>(_settings.RoundTrips);
            var chainSamples = new List<double>(_settings.RoundTrips);
            for (var i = 0; i < _settings.RoundTrips; i++)
            {
                for (var side = 0; side < 2; side++)
                {
                    if ((side == 0) == (i % 2 == 0))
                    {
                        tunnelSamples.Add(await Workloads.TunnelRoundTripAsync(tunnel, ping, buffer, _cancellationToken));
                    }
                    else
                    {
                        chainSamples.Add(await Workloads.ChainRoundTripAsync(call, message, _cancellationToken));
                    }
                }
            }

            await Workloads.CloseTunnelAsync(tunnel, _cancellationToken);
            await Workloads.CloseChainAsync(call, _cancellationToken);
            tunnelP50.Add(Measure.Median(tunnelSamples));
            tunnelP99.Add(Measure.Percentile(tunnelSamples, 99));
            chainP50.Add(Measure.Median(chainSamples));
            chainP99.Add(Measure.Percentile(chainSamples, 99));
            ratios.Add(tunnelP50[^1] / chainP50[^1]);
        }

        _report.Add(section, "latency.relays3.tunnel_p50_ms", "tunnel, 64-byte round trip, p50", Measure.Median(tunnelP50), "ms", "F3");
        _report.Add(section, "latency.relays3.tunnel_p99_ms", "tunnel, 64-byte round trip, p99", Measure.Median(tunnelP99), "ms", "F3");
        _report.Add(section, "latency.relays3.plain_chain_p50_ms", $"plain chain, {_cellBytes}-byte round trip, p50", Measure.Median(chainP50), "ms", "F3");
        _report.Add(section, "latency.relays3.plain_chain_p99_ms", $"plain chain, {_cellBytes}-byte round trip, p99", Measure.Median(chainP99), "ms", "F3");
        _report.Add(section, "latency.relays3.p50_ratio_to_plain_chain", $"tunnel / plain chain, p50 (median of per-run ratios; range {ratios.Min():F2}–{ratios.Max():F2})", Measure.Median(ratios), "×", "F2");
        _report.Add(section, "latency.relays3.p99_ratio_to_plain_chain", "tunnel / plain chain, p99", Measure.Median(tunnelP99) / Measure.Median(chainP99), "×", "F2");
        _report.Runs("latency.relays3.p50_ratio_to_plain_chain", ratios);
        _report.Runs("latency.relays3.tunnel_p50_ms", tunnelP50);
        _report.Runs("latency.relays3.plain_chain_p50_ms", chainP50);
        _report.Runs("latency.relays3.tunnel_p99_ms", tunnelP99);
        _report.Runs("latency.relays3.plain_chain_p99_ms", chainP99);
        _report.Note(section, $"One flushed write of 64 bytes (one cell on the wire) and the echo read back; {_settings.RoundTrips} round trips of each per run after 20 unmeasured, "
            + "tunnel and chain taking turns one round trip at a time; "
            + $"medians over {_settings.Repeats} runs of each run's p50 and p99. The chain carries messages of the tunnel's wire size ({_cellBytes} B).");
        _report.AddTarget("latency.relays3.p50_ratio_to_plain_chain", "64-byte RTT over 3 relays ≤ 1.2 × plain chain p50", atMost: true, 1.2);
    }

    // A new stream on a kept route against what it replaces: a round trip on an open tunnel, and a new path; node 0's TunnelClient, no control API.
    private async Task StreamsAsync()
    {
        const string section = "A new stream on a kept 3-relay route";
        var ping = new byte[PingBytes];
        RandomNumberGenerator.Fill(ping);
        var buffer = new byte[4096];
        var route = Route(LatencyRelays);
        var streams = new List<double>();
        var open = new List<double>();
        var fresh = new List<double>();
        var toOpen = new List<double>();
        var toFresh = new List<double>();
        var count = _settings.RoundTrips / 2;
        var freshEvery = Math.Max(1, count / _settings.FreshCalls);
        for (var repeat = 0; repeat < _settings.Repeats; repeat++)
        {
            Progress($"streams: run {repeat + 1} of {_settings.Repeats}, {count} new streams and open-tunnel round trips, a new path every {freshEvery}, interleaved");
            var tunnel = await Workloads.OpenTunnelAsync(Cluster[0].Node, route, _cancellationToken);
            for (var i = 0; i < 20; i++)
            {
                await Workloads.FreshTunnelFirstReplyAsync(Cluster[0].Node, route, ping, _cancellationToken, reuse: true);
                await Workloads.TunnelRoundTripAsync(tunnel, ping, buffer, _cancellationToken);
            }

            var streamRun = new List<double>(count);
            var openRun = new List<double>(count);
            var freshRun = new List<double>();
            for (var i = 0; i < count; i++)
            {
                if (i % 2 == 0)
                {
                    streamRun.Add((await Workloads.FreshTunnelFirstReplyAsync(Cluster[0].Node, route, ping, _cancellationToken, reuse: true)).Total);
                    openRun.Add(await Workloads.TunnelRoundTripAsync(tunnel, ping, buffer, _cancellationToken));
                }
                else
                {
                    openRun.Add(await Workloads.TunnelRoundTripAsync(tunnel, ping, buffer, _cancellationToken));
                    streamRun.Add((await Workloads.FreshTunnelFirstReplyAsync(Cluster[0].Node, route, ping, _cancellationToken, reuse: true)).Total);
                }

                if (i % freshEvery == 0)
                {
                    freshRun.Add((await Workloads.FreshTunnelFirstReplyAsync(Cluster[0].Node, route, ping, _cancellationToken)).Total);
                }
            }

            await Workloads.CloseTunnelAsync(tunnel, _cancellationToken);
            streams.AddRange(streamRun);
            open.AddRange(openRun);
            fresh.AddRange(freshRun);
            toOpen.Add(Measure.Median(streamRun) / Measure.Median(openRun));
            toFresh.Add(Measure.Median(streamRun) / Measure.Median(freshRun));
        }

        var tail = Measure.SupportedTail(streams.Count);
        _report.Add(section, "streams.relays3.stream_p50_ms", $"new stream on the kept route (Open, 64 B and End in one message), first reply byte, p50 of {streams.Count}", Measure.Median(streams), "ms", "F3");
        _report.Add(section, $"streams.relays3.stream_p{tail}_ms", $"new stream, p{tail}", Measure.Percentile(streams, tail), "ms", "F3");
        _report.Add(section, "streams.relays3.open_tunnel_p50_ms", $"64-byte round trip on an open tunnel on the same route, p50 of {open.Count}", Measure.Median(open), "ms", "F3");
        _report.Add(section, "streams.relays3.new_path_p50_ms", $"new path on the same route (64 B and end with the header), first reply byte, p50 of {fresh.Count}", Measure.Median(fresh), "ms", "F3");
        _report.Add(section, "streams.relays3.ratio_to_open_tunnel", $"new stream / open tunnel round trip, p50 (median of per-run ratios; range {toOpen.Min():F2}–{toOpen.Max():F2})", Measure.Median(toOpen), "×", "F2");
        _report.Add(section, "streams.relays3.ratio_to_new_path", $"new stream / new path, p50 (median of per-run ratios; range {toFresh.Min():F2}–{toFresh.Max():F2})", Measure.Median(toFresh), "×", "F2");
        _report.Runs("streams.relays3.ratio_to_open_tunnel", toOpen);
        _report.Note(section, $"Node 0's TunnelClient (no control API) keeps one route for streams; per run, after 20 unmeasured of each, {count} new streams and {count} round trips on an open tunnel "
            + $"on the same relays, taking turns, a new path every {freshEvery}; {_settings.Repeats} runs.");
        _report.AddTarget("streams.relays3.ratio_to_open_tunnel", "a new stream on a kept route ≤ 1.2 × an open tunnel's 64 B round trip", atMost: true, 1.2);
    }

    private double HeaderBuildMilliseconds(OverlayNode origin, int[] route)
    {
        var hops = route.Select(i => origin.Directory.Find(Cluster.Id(i))!.Descriptor.ToRouteHop()).ToArray();
        var header = new byte[origin.State.HeaderBuilder.HeaderSize];
        var started = Stopwatch.GetTimestamp();
        using (origin.State.HeaderBuilder.Build(hops, TunnelMode.Duplex, DeadlineClass.Minutes15, header))
        {
            return Measure.Milliseconds(started);
        }
    }

    // Time to the first reply byte on a fresh tunnel against a fresh call through the plain chain, same route each pair.
    private async Task FirstReplyAsync()
    {
        const string section = "First reply on a fresh 3-relay path";
        var tunnelP50 = new List<double>();
        var chainP50 = new List<double>();
        var tunnelAll = new List<double>();
        var chainAll = new List<double>();
        var openP50 = new List<double>();
        var buildP50 = new List<double>();
        var ping = new byte[PingBytes];
        RandomNumberGenerator.Fill(ping);
        var message = Message(_cellBytes);
        var random = new Random(7);
        var origin = Cluster[0].Node;
        for (var repeat = 0; repeat < _settings.Repeats; repeat++)
        {
            Progress($"first reply: run {repeat + 1} of {_settings.Repeats}, {_settings.FreshCalls} fresh tunnels and calls");
            var routes = Enumerable.Range(0, _settings.FreshCalls).Select(_ =>
            {
                var others = Enumerable.Range(1, Cluster.Nodes.Count - 1).ToArray();
                random.Shuffle(others);
                return others[..(LatencyRelays + 1)];
            }).ToArray();

            // Every pair of nodes on these routes gets its connections (both services) before anything is timed.
            foreach (var route in routes)
            {
                await Workloads.FreshTunnelFirstReplyAsync(origin, [.. route.Select(Cluster.Id)], ping, _cancellationToken);
                await Workloads.FreshChainFirstReplyAsync(Cluster.Chain(0), [.. route.Select(Cluster.Endpoint)], message, _cancellationToken);
            }

            var tunnelSamples = new List<double>();
            var openSamples = new List<double>();
            var chainSamples = new List<double>();
            for (var i = 0; i < routes.Length; i++)
            {
                var route = routes[i];
                var tunnelFirst = (i + repeat) % 2 == 0;
                for (var side = 0; side < 2; side++)
                {
                    if ((side == 0) == tunnelFirst)
                    {
                        var (total, open) = await Workloads.FreshTunnelFirstReplyAsync(origin, [.. route.Select(Cluster.Id)], ping, _cancellationToken);
                        tunnelSamples.Add(total);
                        openSamples.Add(open);
                    }
                    else
                    {
                        chainSamples.Add(await Workloads.FreshChainFirstReplyAsync(Cluster.Chain(0), [.. route.Select(Cluster.Endpoint)], message, _cancellationToken));
                    }
                }
            }

            tunnelP50.Add(Measure.Median(tunnelSamples));
            tunnelAll.AddRange(tunnelSamples);
            openP50.Add(Measure.Median(openSamples));
            buildP50.Add(Measure.Median([.. routes.Select(route => HeaderBuildMilliseconds(origin, route))]));
            chainP50.Add(Measure.Median(chainSamples));
            chainAll.AddRange(chainSamples);
        }

        _report.Add(section, "first_reply.relays3.tunnel_p50_ms", "fresh tunnel: open with 64 bytes and the end marker in the header's message, first reply byte, p50", Measure.Median(tunnelP50), "ms", "F3");
        // Over 60 samples a "p99" is the maximum: the tail is taken over every run's samples pooled, at the percentile they support.
        var tail = Measure.SupportedTail(tunnelAll.Count);
        _report.Add(section, $"first_reply.relays3.tunnel_p{tail}_ms", $"fresh tunnel, p{tail} of all {tunnelAll.Count} samples", Measure.Percentile(tunnelAll, tail), "ms", "F3");
        _report.Add(section, "first_reply.relays3.tunnel_open_p50_ms", "of which OpenAsync (route resolved, header built, written to hop 1 with the request), p50", Measure.Median(openP50), "ms", "F3");
        _report.Add(section, "first_reply.relays3.header_build_p50_ms", "of which building the header alone (origin, 4 X25519 agreements), p50", Measure.Median(buildP50), "ms", "F3");
        _report.Add(section, "first_reply.relays3.plain_chain_p50_ms", $"fresh plain-chain call: one {_cellBytes}-byte message, end, first reply, p50", Measure.Median(chainP50), "ms", "F3");
        _report.Add(section, $"first_reply.relays3.plain_chain_p{tail}_ms", $"fresh plain-chain call, p{tail} of all {chainAll.Count} samples", Measure.Percentile(chainAll, tail), "ms", "F3");
        _report.Add(section, "first_reply.relays3.p50_ratio_to_plain_chain", "fresh tunnel / fresh plain-chain call, p50", Measure.Median(tunnelP50) / Measure.Median(chainP50), "×", "F2");
        _report.Runs("first_reply.relays3.tunnel_p50_ms", tunnelP50);
        _report.Runs("first_reply.relays3.plain_chain_p50_ms", chainP50);
        _report.Note(section, $"Origin node 0; relays and destination drawn at random from the other 19 nodes, the same route for the tunnel and the call of each pair; "
            + $"{_settings.FreshCalls} pairs per run after one unmeasured pass over the same routes (connections warm), medians over {_settings.Repeats} runs. "
            + "The tunnel's time includes building the header (one X25519 agreement per hop) and every hop processing it.");
        _report.AddTarget("first_reply.relays3.p50_ratio_to_plain_chain", "fresh-tunnel first reply byte ≤ 1.5 × plain chain fresh call", atMost: true, 1.5);
    }
}
