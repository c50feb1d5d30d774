using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Grpc.Core;
using Overlay.Bench.Network;
using Overlay.Host.Options;
using Overlay.Protocol.Control.V1;

namespace Overlay.Bench.Processes;

/// <summary>
/// <c>processes [--quick]</c>: the shape users run. N node processes started as deploy/local/run.sh
/// starts them, the application on node 0's control API, against a plain gRPC chain of N separate
/// processes in the same shape; every figure next to its baseline from the same run. See
/// docs/benchmarks.md, "Multi-process harness".
/// </summary>
internal sealed class ProcessesCommand : IAsyncDisposable
{
    private const int ProbeTrips = 20;
    private const double SteadyFactor = 1.2;
    private const double QuietCores = 0.15;
    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan ProbePause = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(30);

    private readonly ProcessesSettings _settings;
    private readonly Report _report;
    private readonly TextWriter _log;
    private readonly CancellationToken _cancellationToken;
    private readonly DirectoryInfo _work;
    private readonly int[] _ports;
    private readonly string[] _nodeIds;
    private ProcessFleet? _nodes;
    private ProcessFleet? _chain;
    private ControlPath? _tunnel;
    private ChainPath? _chainPath;
    private double _nodesIdleCores;
    private double _chainIdleCores;
    private bool _completed;

    private ProcessesCommand(ProcessesSettings settings, Report report, TextWriter log, CancellationToken cancellationToken)
    {
        _settings = settings;
        _report = report;
        _log = log;
        _cancellationToken = cancellationToken;
        _work = Directory.CreateTempSubdirectory("overlay-processes-");
        _ports = ProcessFleet.FreePorts(3 * settings.Nodes);
        _nodeIds = new string[settings.Nodes];
    }

    private int[] LatencyRoute => [.. Enumerable.Range(1, _settings.Relays + 1)];

    private ProcessFleet Nodes => _nodes ?? throw new InvalidOperationException("the nodes have not started");

    private ProcessFleet Chain => _chain ?? throw new InvalidOperationException("the chain has not started");

    private ControlPath Tunnel => _tunnel ?? throw new InvalidOperationException("the nodes have not started");

    private ChainPath ChainPath => _chainPath ?? throw new InvalidOperationException("the chain has not started");

    public static async Task<int> RunAsync(ProcessesSettings settings, Report report, TextWriter log, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        await using (var command = new ProcessesCommand(settings, report, log, cancellationToken))
        {
            await command.RunPhasesAsync();
            command._completed = true;
        }

        report.Add("Run", "processes.run_seconds", "multi-process phases, wall clock", clock.Elapsed.TotalSeconds, "s");
        return 0;
    }

    public async ValueTask DisposeAsync()
    {
        _tunnel?.Dispose();
        _chainPath?.Dispose();
        if (_nodes is not null)
        {
            await _nodes.DisposeAsync();
        }

        if (_chain is not null)
        {
            await _chain.DisposeAsync();
        }

        if (!_completed)
        {
            _log.WriteLine($"processes: the logs and data directories are kept in {_work.FullName}");
            return;
        }

        try
        {
            _work.Delete(recursive: true);
        }
        catch (IOException)
        {
            // A temporary directory left behind is harmless.
        }
    }

    private Uri LinkUri(int node) => new($"http://127.0.0.1:{_ports[node]}");

    private Uri ControlUri(int node) => new($"http://127.0.0.1:{_ports[_settings.Nodes + node]}");

    private Uri ChainUri(int hop) => new($"http://127.0.0.1:{_ports[(2 * _settings.Nodes) + hop]}");

    private string DataDirectory(int node) => Path.Combine(_work.FullName, "node" + node.ToString(CultureInfo.InvariantCulture));

    private void Progress(string message) =>
        _log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[{DateTime.Now:HH:mm:ss}] {message}"));

    private async Task RunPhasesAsync()
    {
        _report.Context["mode"] = _settings.Quick ? "quick" : "full";
        _report.Context["machine"] = $"{Environment.ProcessorCount} cores, {RuntimeInformation.OSDescription}, {RuntimeInformation.FrameworkDescription}";
        _report.Context["shape"] = $"{_settings.Nodes} node processes (deploy/local/run.sh's settings, but gossip every {_settings.GossipInterval}) and {_settings.Nodes} chain-hop processes, all started at once; the application (this process) on node 0's control API";
        _report.Context["node binary"] = _settings.HostPath;
        _report.Context["environment of started processes"] = _settings.Environment.Count == 0 ? "inherited, nothing added" : string.Join(' ', _settings.Environment.Select(e => $"{e.Key}={e.Value}"));
        _report.Context["telemetry"] = Measure.TelemetryDescription(_settings.NodeArguments);

        var cold = await StartAsync();
        await WarmUpAsync();
        cold = cold with { QuietSeconds = await WaitForQuietAsync() };
        await IdleAsync();
        await BulkAsync();
        var warm = await LatencyAsync();
        await FirstReplyAsync();
        await ReusedRouteAsync();
        ReportCold(cold, warm);
        await RestartAsync(warm);
    }

    // Both fleets at once, then the overlay's formation, then round trips probed for the cold window.
    private async Task<ColdStart> StartAsync()
    {
        Progress($"starting {_settings.Nodes} node processes and {_settings.Nodes} chain-hop processes");
        var benchDll = typeof(ProcessesCommand).Assembly.Location;
        var host = _settings.HostPath;
        var (file, prefix) = host.EndsWith(".dll", StringComparison.OrdinalIgnoreCase) ? (ChildProcess.DotnetHost, new[] { host }) : (host, []);
        _nodes = ProcessFleet.Start(_settings.Nodes, i => ChildProcess.Start(file, [.. prefix, .. NodeArguments(i)], _settings.Environment,
            Path.Combine(_work.FullName, $"node{i}.log")));
        _chain = ProcessFleet.Start(_settings.Nodes, i => ChildProcess.Start(ChildProcess.DotnetHost,
            [benchDll, "chain-hop", "--url", ChainUri(i).ToString(), "--data", Path.Combine(_work.FullName, $"chain{i}")], _settings.Environment,
            Path.Combine(_work.FullName, $"chain{i}.log")));
        var started = Nodes[0].StartedTimestamp;

        var formed = await WaitForNodesAsync();
        var nodesCpuFormed = Nodes.CpuSeconds();
        await WaitForChainAsync();
        var chainReady = Stopwatch.GetElapsedTime(Chain[0].StartedTimestamp).TotalSeconds;
        Progress($"overlay formed after {formed:F1} s; probing round trips for {_settings.ColdWindow.TotalSeconds:F0} s");

        _tunnel = new ControlPath(ControlUri(0), File.ReadAllText(Path.Combine(DataDirectory(0), "control.token")).Trim(), i => _nodeIds[i]);
        _chainPath = new ChainPath(ChainUri);
        var windowStart = Stopwatch.GetTimestamp();
        var nodesCpuWindow = Nodes.CpuSeconds();
        var chainCpuWindow = Chain.CpuSeconds();
        var tunnelProbes = new List<(double Seconds, double P50)>();
        var chainProbes = new List<(double Seconds, double P50)>();
        var failures = 0;
        while (Stopwatch.GetElapsedTime(windowStart) < _settings.ColdWindow)
        {
            failures += await ProbeIntoAsync(Tunnel, started, tunnelProbes) ? 0 : 1;
            failures += await ProbeIntoAsync(ChainPath, Chain[0].StartedTimestamp, chainProbes) ? 0 : 1;
        }

        var window = Stopwatch.GetElapsedTime(windowStart).TotalSeconds;
        return new ColdStart(formed, chainReady, nodesCpuFormed, (Nodes.CpuSeconds() - nodesCpuWindow) / window, (Chain.CpuSeconds() - chainCpuWindow) / window,
            Stopwatch.GetElapsedTime(started, windowStart).TotalSeconds, window, tunnelProbes, chainProbes, failures);
    }

    private IEnumerable<string> NodeArguments(int node)
    {
        // As deploy/local/run.sh starts a node (its single-host settings are SingleHostNetwork's).
        var arguments = new List<string>
        {
            $"--Overlay:Link:Url={LinkUri(node)}".TrimEnd('/'),
            $"--Overlay:Control:Url={ControlUri(node)}".TrimEnd('/'),
            $"--Overlay:DataDirectory={DataDirectory(node)}",
            "--Overlay:Network:MaxRelays=32",
            $"--Overlay:Directory:GossipInterval={_settings.GossipInterval}",
            "--Logging:LogLevel:Microsoft.AspNetCore=Warning",
        };
        arguments.AddRange(SingleHostNetwork.Configuration.Select(c => $"--{c.Key}={c.Value}"));
        if (node > 0)
        {
            arguments.Add($"--Overlay:Directory:Seeds:0={LinkUri(0)}".TrimEnd('/'));
        }

        arguments.AddRange(_settings.NodeArguments);
        return arguments;
    }

    // Every node answers GetInfo on its control API and holds every other one up; returns the seconds since the first start.
    private async Task<double> WaitForNodesAsync()
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(_cancellationToken);
        deadline.CancelAfter(_settings.FormTimeout);
        using var poll = new PeriodicTimer(TimeSpan.FromMilliseconds(100));
        for (var i = 0; i < _settings.Nodes; i++)
        {
            using var channel = ApplicationChannel.Create(ControlUri(i));
            var client = new Control.ControlClient(channel);
            var tokenFile = Path.Combine(DataDirectory(i), "control.token");
            while (true)
            {
                Nodes.ThrowIfExited();
                if (File.Exists(tokenFile))
                {
                    try
                    {
                        var headers = new Metadata { { "authorization", "Bearer " + File.ReadAllText(tokenFile).Trim() } };
                        var info = await client.GetInfoAsync(new GetInfoRequest(), headers, deadline: DateTime.UtcNow.AddSeconds(5), cancellationToken: deadline.Token);
                        if (info.PeersUp >= _settings.Nodes - 1)
                        {
                            _nodeIds[i] = info.NodeId;
                            break;
                        }
                    }
                    catch (RpcException exception) when (exception.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded or StatusCode.Unauthenticated)
                    {
                        // Not listening yet, or the token file was read while being written: poll again.
                    }
                }

                await poll.WaitForNextTickAsync(deadline.Token);
            }
        }

        return Stopwatch.GetElapsedTime(Nodes[0].StartedTimestamp).TotalSeconds;
    }

    private async Task WaitForChainAsync()
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(_cancellationToken);
        deadline.CancelAfter(_settings.FormTimeout);
        using var poll = new PeriodicTimer(TimeSpan.FromMilliseconds(100));
        for (var i = 0; i < _settings.Nodes; i++)
        {
            var hop = i;
            using var alone = new ChainPath(_ => ChainUri(hop));
            while (true)
            {
                Chain.ThrowIfExited();
                try
                {
                    await alone.FirstReplyAsync([], deadline.Token);
                    break;
                }
                catch (RpcException exception) when (exception.StatusCode is StatusCode.Unavailable)
                {
                    // Not listening yet.
                }

                await poll.WaitForNextTickAsync(deadline.Token);
            }
        }
    }

    // One probe: a path opened on the latency route, 20 round trips, closed; false (and nothing recorded) if it failed.
    private async Task<bool> ProbeIntoAsync(IPathUnderTest path, long since, List<(double Seconds, double P50)> probes)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_cancellationToken);
        timeout.CancelAfter(ProbeTimeout);
        try
        {
            var samples = new List<double>(ProbeTrips);
            await using (var open = await path.OpenAsync(LatencyRoute, timeout.Token))
            {
                for (var i = 0; i < ProbeTrips; i++)
                {
                    samples.Add(await open.RoundTripAsync(timeout.Token));
                }
            }

            probes.Add((Stopwatch.GetElapsedTime(since).TotalSeconds, Measure.Median(samples)));
            return true;
        }
        catch (Exception exception) when (exception is RpcException or InvalidOperationException || (exception is OperationCanceledException && !_cancellationToken.IsCancellationRequested))
        {
            return false;
        }
    }

    // Start-up compilation keeps freshly started processes busy for tens of seconds after they answer; the
    // figures are taken once both fleets are quiet (or the cap has passed). Returns the nodes' quiet time since their start.
    private async Task<double> WaitForQuietAsync()
    {
        Progress($"waiting until the fleets are quiet (under {QuietCores} cores over 1 s, at most {_settings.QuietCap.TotalSeconds:F0} s)");
        var capped = Stopwatch.GetTimestamp();
        using var tick = new PeriodicTimer(TimeSpan.FromSeconds(1));
        var nodes = Nodes.CpuSeconds();
        var chain = Chain.CpuSeconds();
        var last = Stopwatch.GetTimestamp();
        while (await tick.WaitForNextTickAsync(_cancellationToken))
        {
            var (nodesNow, chainNow, now) = (Nodes.CpuSeconds(), Chain.CpuSeconds(), Stopwatch.GetTimestamp());
            var seconds = Stopwatch.GetElapsedTime(last, now).TotalSeconds;
            if ((nodesNow - nodes) / seconds < QuietCores && (chainNow - chain) / seconds < QuietCores)
            {
                return Stopwatch.GetElapsedTime(Nodes[0].StartedTimestamp).TotalSeconds;
            }

            if (Stopwatch.GetElapsedTime(capped) >= _settings.QuietCap)
            {
                return double.NaN;
            }

            (nodes, chain, last) = (nodesNow, chainNow, now);
        }

        return double.NaN;
    }

    // What the idle fleets burn (gossip, timers), subtracted from the CPU of each bulk run.
    private async Task IdleAsync()
    {
        Progress("measuring the idle fleets' CPU");
        var nodes = Nodes.CpuSeconds();
        var chain = Chain.CpuSeconds();
        var started = Stopwatch.GetTimestamp();
        await Task.Delay(TimeSpan.FromSeconds(3), _cancellationToken);
        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        _nodesIdleCores = (Nodes.CpuSeconds() - nodes) / seconds;
        _chainIdleCores = (Chain.CpuSeconds() - chain) / seconds;
    }

    private async Task WarmUpAsync()
    {
        Progress("warming up (unmeasured)");
        foreach (var path in new IPathUnderTest[] { Tunnel, ChainPath })
        {
            await path.SendAsync(LatencyRoute, _settings.WarmBytes, _cancellationToken);
            await using (var open = await path.OpenAsync(LatencyRoute, _cancellationToken))
            {
                for (var i = 0; i < 200; i++)
                {
                    await open.RoundTripAsync(_cancellationToken);
                }
            }

            for (var i = 0; i < 20; i++)
            {
                await path.FirstReplyAsync(LatencyRoute, _cancellationToken);
            }
        }
    }

    private async Task BulkAsync()
    {
        const string section = "Multi-process: one-way bulk through 3 relays";
        var bytes = _settings.BulkBytes;
        var tunnelMbs = new List<double>();
        var chainMbs = new List<double>();
        var ratios = new List<double>();
        var tunnelCpu = new List<double>();
        var chainCpu = new List<double>();
        for (var repeat = 0; repeat < _settings.Repeats; repeat++)
        {
            Progress($"bulk: run {repeat + 1} of {_settings.Repeats}, {bytes >> 20} MiB one way on each path");
            double t = 0, c = 0;
            for (var side = 0; side < 2; side++)
            {
                if ((side == 0) == (repeat % 2 == 0))
                {
                    (t, var cpu) = await TimedSendAsync(Tunnel, Nodes, _nodesIdleCores, bytes);
                    tunnelCpu.Add(cpu);
                }
                else
                {
                    (c, var cpu) = await TimedSendAsync(ChainPath, Chain, _chainIdleCores, bytes);
                    chainCpu.Add(cpu);
                }
            }

            tunnelMbs.Add(t);
            chainMbs.Add(c);
            ratios.Add(t / c);
        }

        var cpuRatios = tunnelCpu.Zip(chainCpu, (t, c) => t / c).ToList();
        _report.Add(section, "processes.bulk.tunnel_mb_s", "tunnel via the control API (Send), one way", Measure.Median(tunnelMbs), "MB/s");
        _report.Add(section, "processes.bulk.plain_chain_mb_s", "plain chain of processes, one way", Measure.Median(chainMbs), "MB/s");
        _report.Add(section, "processes.bulk.ratio_to_plain_chain", $"tunnel / plain chain (median of per-run ratios; range {ratios.Min():F2}–{ratios.Max():F2})", Measure.Median(ratios), "×", "F2");
        _report.Add(section, "processes.bulk.tunnel_cpu_s_per_gib", "tunnel: CPU seconds per GiB, all node processes", Measure.Median(tunnelCpu), "s/GiB");
        _report.Add(section, "processes.bulk.plain_chain_cpu_s_per_gib", "plain chain: CPU seconds per GiB, all chain processes", Measure.Median(chainCpu), "s/GiB");
        _report.Add(section, "processes.bulk.cpu_ratio_to_plain_chain", $"CPU per GiB, tunnel / plain chain (median of per-run ratios; range {cpuRatios.Min():F2}–{cpuRatios.Max():F2})", Measure.Median(cpuRatios), "×", "F2");
        _report.Add(section, "processes.idle.nodes_cores", "idle node processes, cores busy (subtracted above)", _nodesIdleCores, "cores", "F3");
        _report.Add(section, "processes.idle.chain_cores", "idle chain processes, cores busy (subtracted above)", _chainIdleCores, "cores", "F3");
        _report.Runs("processes.bulk.tunnel_mb_s", tunnelMbs);
        _report.Runs("processes.bulk.plain_chain_mb_s", chainMbs);
        _report.Runs("processes.bulk.ratio_to_plain_chain", ratios);
        _report.Runs("processes.bulk.tunnel_cpu_s_per_gib", tunnelCpu);
        _report.Runs("processes.bulk.plain_chain_cpu_s_per_gib", chainCpu);
        _report.Note(section, $"{bytes >> 20} MiB per run from the application: through node 0's control API `Send` (data messages of {ControlPath.WriteBytes} B, one link message of cells; "
            + $"timed until the destination's receipt returns) against the chain (messages of {ChainPath.WriteBytes} B, one link message; timed until the last hop's confirmation); "
            + $"route node 0 → nodes 1-3 → node 4, the chain's hops 0 → 1-3 → 4; MB/s = 10^6 bytes per second; medians of {_settings.Repeats} paired runs, alternating which goes first. "
            + "CPU = user + system time of every process of that side (/proc/PID/stat) over the run, less the side's idle rate × the run's duration; the application's own CPU is in neither.");
        _report.AddTarget("processes.bulk.ratio_to_plain_chain", "multi-process bulk ≥ 0.9 × plain chain", atMost: false, 0.9);
        _report.AddTarget("processes.bulk.cpu_ratio_to_plain_chain", "multi-process CPU per GiB ≤ 1.2 × plain chain", atMost: true, 1.2);
    }

    private async Task<(double MbS, double CpuSecondsPerGib)> TimedSendAsync(IPathUnderTest path, ProcessFleet fleet, double idleCores, long bytes)
    {
        var cpu = fleet.CpuSeconds();
        var seconds = await path.SendAsync(LatencyRoute, bytes, _cancellationToken);
        var used = fleet.CpuSeconds() - cpu - (idleCores * seconds);
        return (bytes / seconds / 1e6, used / (bytes / (1024.0 * 1024 * 1024)));
    }

    private async Task<(double Tunnel, double Chain)> LatencyAsync()
    {
        const string section = "Multi-process: 64-byte round trip on an open 3-relay path";
        var tunnel = new List<double>();
        var chain = new List<double>();
        var ratios = new List<double>();
        var nodesSwitches = Nodes.ContextSwitches();
        var chainSwitches = Chain.ContextSwitches();
        for (var repeat = 0; repeat < _settings.Repeats; repeat++)
        {
            Progress($"round trips: run {repeat + 1} of {_settings.Repeats}, {_settings.RoundTrips} of each, interleaved");
            await using var tunnelPath = await Tunnel.OpenAsync(LatencyRoute, _cancellationToken);
            await using var chainPath = await ChainPath.OpenAsync(LatencyRoute, _cancellationToken);
            for (var i = 0; i < 20; i++)
            {
                await tunnelPath.RoundTripAsync(_cancellationToken);
                await chainPath.RoundTripAsync(_cancellationToken);
            }

            var tunnelRun = new List<double>(_settings.RoundTrips);
            var chainRun = new List<double>(_settings.RoundTrips);
            for (var i = 0; i < _settings.RoundTrips; i++)
            {
                for (var side = 0; side < 2; side++)
                {
                    if ((side == 0) == (i % 2 == 0))
                    {
                        tunnelRun.Add(await tunnelPath.RoundTripAsync(_cancellationToken));
                    }
                    else
                    {
                        chainRun.Add(await chainPath.RoundTripAsync(_cancellationToken));
                    }
                }
            }

            tunnel.AddRange(tunnelRun);
            chain.AddRange(chainRun);
            ratios.Add(Measure.Median(tunnelRun) / Measure.Median(chainRun));
        }

        var (nodesSwitched, chainSwitched) = (Nodes.ContextSwitches(), Chain.ContextSwitches());
        var trips = (double)((_settings.RoundTrips + 20) * _settings.Repeats);
        var tail = Measure.SupportedTail(tunnel.Count);
        _report.Add(section, "processes.rtt.tunnel_voluntary_switches", "context switches per round trip (opening and closing included), all node processes: waits", (nodesSwitched.Voluntary - nodesSwitches.Voluntary) / trips, "", "F1");
        _report.Add(section, "processes.rtt.plain_chain_voluntary_switches", "the same, all chain processes", (chainSwitched.Voluntary - chainSwitches.Voluntary) / trips, "", "F1");
        _report.Add(section, "processes.rtt.tunnel_p50_ms", $"tunnel via the control API, 64 B, p50 of {tunnel.Count}", Measure.Median(tunnel), "ms", "F3");
        _report.Add(section, $"processes.rtt.tunnel_p{tail}_ms", $"tunnel, p{tail}", Measure.Percentile(tunnel, tail), "ms", "F3");
        _report.Add(section, "processes.rtt.plain_chain_p50_ms", $"plain chain, {ChainPath.PingBytes} B, p50 of {chain.Count}", Measure.Median(chain), "ms", "F3");
        _report.Add(section, $"processes.rtt.plain_chain_p{tail}_ms", $"plain chain, p{tail}", Measure.Percentile(chain, tail), "ms", "F3");
        _report.Add(section, "processes.rtt.p50_ratio_to_plain_chain", $"tunnel / plain chain, p50 (median of per-run ratios; range {ratios.Min():F2}–{ratios.Max():F2})", Measure.Median(ratios), "×", "F2");
        _report.Runs("processes.rtt.p50_ratio_to_plain_chain", ratios);
        _report.Note(section, $"One open path of each per run, {_settings.RoundTrips} round trips of each after 20 unmeasured, taking turns; {_settings.Repeats} runs, percentiles over all samples pooled "
            + $"(p{tail}: the highest tail with at least 5 samples beyond it). The application writes 64 B to the control API (one cell on the links); the chain carries messages of that cell's size.");
        _report.AddTarget("processes.rtt.p50_ratio_to_plain_chain", "multi-process 64 B round trip ≤ 1.2 × plain chain p50", atMost: true, 1.2);
        return (Measure.Median(tunnel), Measure.Median(chain));
    }

    private async Task FirstReplyAsync()
    {
        const string section = "Multi-process: new 3-relay path, first echo";
        var random = new Random(7);
        var tunnel = new List<double>();
        var chain = new List<double>();
        var tunnelDirect = new List<double>();
        var chainDirect = new List<double>();
        for (var repeat = 0; repeat < _settings.Repeats; repeat++)
        {
            Progress($"new paths: run {repeat + 1} of {_settings.Repeats}, {_settings.FreshCalls} of each");
            var routes = Enumerable.Range(0, _settings.FreshCalls).Select(_ =>
            {
                var others = Enumerable.Range(1, _settings.Nodes - 1).ToArray();
                random.Shuffle(others);
                return others[..(_settings.Relays + 1)];
            }).ToArray();
            foreach (var route in routes)
            {
                await Tunnel.FirstReplyAsync(route, _cancellationToken);
                await ChainPath.FirstReplyAsync(route, _cancellationToken);
            }

            for (var i = 0; i < routes.Length; i++)
            {
                for (var side = 0; side < 2; side++)
                {
                    // The same destination without relays too, so the cost per relay is the difference.
                    if ((side == 0) == ((i + repeat) % 2 == 0))
                    {
                        tunnel.Add(await Tunnel.FirstReplyAsync(routes[i], _cancellationToken));
                        tunnelDirect.Add(await Tunnel.FirstReplyAsync(routes[i][^1..], _cancellationToken));
                    }
                    else
                    {
                        chain.Add(await ChainPath.FirstReplyAsync(routes[i], _cancellationToken));
                        chainDirect.Add(await ChainPath.FirstReplyAsync(routes[i][^1..], _cancellationToken));
                    }
                }
            }
        }

        // The same route back to back: every process on it has just been busy (no parked thread to wake), unlike random routes over 8 nodes.
        var tunnelHot = new List<double>();
        var chainHot = new List<double>();
        var nodesSwitches = Nodes.ContextSwitches();
        for (var i = 0; i < _settings.FreshCalls; i++)
        {
            tunnelHot.Add(await Tunnel.FirstReplyAsync(LatencyRoute, _cancellationToken));
        }

        var nodesSwitched = Nodes.ContextSwitches();
        var chainSwitches = Chain.ContextSwitches();
        for (var i = 0; i < _settings.FreshCalls; i++)
        {
            chainHot.Add(await ChainPath.FirstReplyAsync(LatencyRoute, _cancellationToken));
        }

        var chainSwitched = Chain.ContextSwitches();
        double PerCall(long before, long after) => (after - before) / (double)_settings.FreshCalls;
        _report.Add(section, "processes.first_reply.back_to_back_tunnel_voluntary_switches", "of which context switches per new tunnel, all node processes: waits (a thread parked and woken)", PerCall(nodesSwitches.Voluntary, nodesSwitched.Voluntary), "", "F0");
        _report.Add(section, "processes.first_reply.back_to_back_tunnel_involuntary_switches", "… and preemptions", PerCall(nodesSwitches.Involuntary, nodesSwitched.Involuntary), "", "F0");
        _report.Add(section, "processes.first_reply.back_to_back_plain_chain_voluntary_switches", "context switches per new plain-chain call, all chain processes: waits", PerCall(chainSwitches.Voluntary, chainSwitched.Voluntary), "", "F0");
        _report.Add(section, "processes.first_reply.back_to_back_plain_chain_involuntary_switches", "… and preemptions", PerCall(chainSwitches.Involuntary, chainSwitched.Involuntary), "", "F0");

        _report.Add(section, "processes.first_reply.back_to_back_tunnel_p50_ms", $"new tunnels on one route back to back ({_settings.FreshCalls}), p50", Measure.Median(tunnelHot), "ms", "F3");
        _report.Add(section, "processes.first_reply.back_to_back_plain_chain_p50_ms", $"new plain-chain calls on one route back to back ({_settings.FreshCalls}), p50", Measure.Median(chainHot), "ms", "F3");

        var tail = Measure.SupportedTail(tunnel.Count);
        _report.Add(section, "processes.first_reply.tunnel_p50_ms", $"new tunnel via the control API (open, 64 B and end in the first message), first reply byte, p50 of {tunnel.Count}", Measure.Median(tunnel), "ms", "F3");
        _report.Add(section, $"processes.first_reply.tunnel_p{tail}_ms", $"new tunnel, p{tail}", Measure.Percentile(tunnel, tail), "ms", "F3");
        _report.Add(section, "processes.first_reply.plain_chain_p50_ms", $"new plain-chain call ({ChainPath.PingBytes} B, end), first reply, p50 of {chain.Count}", Measure.Median(chain), "ms", "F3");
        _report.Add(section, $"processes.first_reply.plain_chain_p{tail}_ms", $"new plain-chain call, p{tail}", Measure.Percentile(chain, tail), "ms", "F3");
        _report.Add(section, "processes.first_reply.p50_ratio_to_plain_chain", "new tunnel / new plain-chain call, p50", Measure.Median(tunnel) / Measure.Median(chain), "×", "F2");
        _report.Add(section, "processes.first_reply.direct_tunnel_p50_ms", "new tunnel to the same destination without relays, p50", Measure.Median(tunnelDirect), "ms", "F3");
        _report.Add(section, "processes.first_reply.direct_plain_chain_p50_ms", "new plain-chain call to the same last hop without relays, p50", Measure.Median(chainDirect), "ms", "F3");
        _report.Add(section, "processes.first_reply.tunnel_per_relay_ms", $"tunnel: cost per relay, (p50 with {_settings.Relays} − p50 without) / {_settings.Relays}", (Measure.Median(tunnel) - Measure.Median(tunnelDirect)) / _settings.Relays, "ms", "F3");
        _report.Add(section, "processes.first_reply.plain_chain_per_relay_ms", "plain chain: the same per hop", (Measure.Median(chain) - Measure.Median(chainDirect)) / _settings.Relays, "ms", "F3");
        _report.Runs("processes.first_reply.tunnel_ms", tunnel);
        _report.Runs("processes.first_reply.plain_chain_ms", chain);
        _report.Note(section, $"Origin node 0 (chain hop 0); relays and destination drawn at random from the other {_settings.Nodes - 1}, the same route for both of each pair; "
            + $"{_settings.FreshCalls} pairs per run after one unmeasured pass over the same routes (connections warm), {_settings.Repeats} runs, percentiles over all samples pooled.");
        _report.AddTarget("processes.first_reply.p50_ratio_to_plain_chain", "multi-process new path + first echo ≤ 1.5 × plain chain fresh call", atMost: true, 1.5);
    }

    // A new stream on a kept route against the two things it replaces: a round trip on an open tunnel, and a new path.
    private async Task ReusedRouteAsync()
    {
        const string section = "Multi-process: a new stream on a kept 3-relay route";
        var streams = new List<double>();
        var open = new List<double>();
        var fresh = new List<double>();
        var toOpen = new List<double>();
        var toFresh = new List<double>();
        var count = _settings.RoundTrips / 2;
        for (var repeat = 0; repeat < _settings.Repeats; repeat++)
        {
            Progress($"streams on a kept route: run {repeat + 1} of {_settings.Repeats}, {count} streams and open-tunnel round trips, {_settings.FreshCalls} new paths, interleaved");
            await using var openPath = await Tunnel.OpenAsync(LatencyRoute, _cancellationToken);
            for (var i = 0; i < 20; i++)
            {
                // The first builds the route; the rest warm it like the open tunnel's unmeasured trips.
                await Tunnel.StreamFirstReplyAsync(LatencyRoute, _cancellationToken);
                await openPath.RoundTripAsync(_cancellationToken);
            }

            var streamRun = new List<double>(count);
            var openRun = new List<double>(count);
            var freshRun = new List<double>(_settings.FreshCalls);
            for (var i = 0; i < count; i++)
            {
                if (i % 2 == 0)
                {
                    streamRun.Add(await Tunnel.StreamFirstReplyAsync(LatencyRoute, _cancellationToken));
                    openRun.Add(await openPath.RoundTripAsync(_cancellationToken));
                }
                else
                {
                    openRun.Add(await openPath.RoundTripAsync(_cancellationToken));
                    streamRun.Add(await Tunnel.StreamFirstReplyAsync(LatencyRoute, _cancellationToken));
                }

                if (i % (count / _settings.FreshCalls) == 0 && freshRun.Count < _settings.FreshCalls)
                {
                    freshRun.Add(await Tunnel.FirstReplyAsync(LatencyRoute, _cancellationToken));
                }
            }

            streams.AddRange(streamRun);
            open.AddRange(openRun);
            fresh.AddRange(freshRun);
            toOpen.Add(Measure.Median(streamRun) / Measure.Median(openRun));
            toFresh.Add(Measure.Median(streamRun) / Measure.Median(freshRun));
        }

        var tail = Measure.SupportedTail(streams.Count);
        _report.Add(section, "processes.streams.stream_p50_ms", $"new stream on the kept route via the control API (OpenTunnel with reuse, 64 B and end in the first message), first reply byte, p50 of {streams.Count}", Measure.Median(streams), "ms", "F3");
        _report.Add(section, $"processes.streams.stream_p{tail}_ms", $"new stream, p{tail}", Measure.Percentile(streams, tail), "ms", "F3");
        _report.Add(section, "processes.streams.open_tunnel_p50_ms", $"64 B round trip on an open tunnel on the same route, p50 of {open.Count}", Measure.Median(open), "ms", "F3");
        _report.Add(section, "processes.streams.new_path_p50_ms", $"new path on the same route (OpenTunnel, 64 B and end), first reply byte, p50 of {fresh.Count}", Measure.Median(fresh), "ms", "F3");
        _report.Add(section, "processes.streams.ratio_to_open_tunnel", $"new stream / open tunnel round trip, p50 (median of per-run ratios; range {toOpen.Min():F2}–{toOpen.Max():F2})", Measure.Median(toOpen), "×", "F2");
        _report.Add(section, "processes.streams.ratio_to_new_path", $"new stream / new path, p50 (median of per-run ratios; range {toFresh.Min():F2}–{toFresh.Max():F2})", Measure.Median(toFresh), "×", "F2");
        _report.Runs("processes.streams.ratio_to_open_tunnel", toOpen);
        _report.Note(section, $"Node 0 keeps one route (the round-trip route) for streams; per run, after 20 unmeasured streams and round trips, {count} new streams and {count} round trips on an open tunnel "
            + $"taking turns, with {_settings.FreshCalls} new paths among them; {_settings.Repeats} runs. A stream's time includes its new control-API call, as a new path's does; the open tunnel's does not.");
        _report.AddTarget("processes.streams.ratio_to_open_tunnel", "a new stream on a kept route ≤ 1.2 × an open tunnel's 64 B round trip", atMost: true, 1.2);
    }

    private void ReportCold(ColdStart cold, (double Tunnel, double Chain) warm)
    {
        const string section = "Multi-process: cold start (every process started at once)";
        _report.Add(section, "processes.cold.formed_seconds", $"{_settings.Nodes} nodes started, each holding every other up", cold.FormedSeconds, "s", "F2");
        _report.Add(section, "processes.cold.chain_ready_seconds", $"{_settings.Nodes} chain hops started, each echoing", cold.ChainReadySeconds, "s", "F2");
        _report.Add(section, "processes.cold.nodes_cpu_to_formed_seconds", "node processes' CPU from start to formed", cold.NodesCpuToFormed, "s", "F2");
        _report.Add(section, "processes.cold.nodes_cores_busy", $"node processes, cores busy over the {cold.WindowSeconds:F0} s probe window after forming", cold.NodesCoresBusy, "cores", "F2");
        _report.Add(section, "processes.cold.chain_cores_busy", "chain processes, cores busy over the same window", cold.ChainCoresBusy, "cores", "F2");
        _report.Add(section, "processes.cold.tunnel_steady_seconds", $"tunnel: first probe with round-trip p50 ≤ {SteadyFactor} × warm p50, seconds after the nodes started", FirstSteady(cold.TunnelProbes, warm.Tunnel), "s", "F2");
        _report.Add(section, "processes.cold.plain_chain_steady_seconds", $"plain chain: the same, seconds after the chain started", FirstSteady(cold.ChainProbes, warm.Chain), "s", "F2");
        _report.Add(section, "processes.cold.tunnel_first_probe_p50_ms", "tunnel: first probe's round-trip p50", cold.TunnelProbes.Count > 0 ? cold.TunnelProbes[0].P50 : double.NaN, "ms", "F3");
        _report.Add(section, "processes.cold.plain_chain_first_probe_p50_ms", "plain chain: first probe's round-trip p50", cold.ChainProbes.Count > 0 ? cold.ChainProbes[0].P50 : double.NaN, "ms", "F3");
        _report.Add(section, "processes.cold.quiet_seconds", $"both fleets under {QuietCores} cores over 1 s (start-up compilation over), seconds after the nodes started; NaN: not within the cap", cold.QuietSeconds, "s", "F1");
        _report.Add(section, "processes.cold.failed_probes", "failed probes in the window", cold.Failures, "", "F0");
        _report.Runs("processes.cold.tunnel_probe_seconds", cold.TunnelProbes.Select(p => p.Seconds));
        _report.Runs("processes.cold.tunnel_probe_p50_ms", cold.TunnelProbes.Select(p => p.P50));
        _report.Runs("processes.cold.chain_probe_seconds", cold.ChainProbes.Select(p => p.Seconds));
        _report.Runs("processes.cold.chain_probe_p50_ms", cold.ChainProbes.Select(p => p.P50));
        _report.Note(section, $"A probe opens a path on the 3-relay route, times {ProbeTrips} 64-byte round trips (median) and closes it; tunnel and chain probes take turns for {cold.WindowSeconds:F0} s "
            + $"from the overlay's formation ({cold.WindowStartSeconds:F1} s after the start). Warm p50 = the round-trip phase's p50. NaN: not reached in the window.");
    }

    private static double FirstSteady(IReadOnlyList<(double Seconds, double P50)> probes, double warm) =>
        probes.Where(p => p.P50 <= SteadyFactor * warm).Select(p => p.Seconds).DefaultIfEmpty(double.NaN).First();

    // One relay of the latency route (node 2, chain hop 2) stopped gracefully and started again among warm processes.
    private async Task RestartAsync((double Tunnel, double Chain) warm)
    {
        const string section = "Multi-process: one relay restarted among warm processes";
        const int restarted = 2;
        foreach (var (name, path, fleet, reference) in new (string, IPathUnderTest, ProcessFleet, double)[] { ("tunnel", Tunnel, Nodes, warm.Tunnel), ("plain_chain", ChainPath, Chain, warm.Chain) })
        {
            Progress($"restart: {path.Name} process {restarted}");
            var process = await fleet.RestartAsync(restarted, StopGrace);
            var probes = new List<(double Seconds, double P50)>();
            var failures = 0;
            var steady = double.NaN;
            while (Stopwatch.GetElapsedTime(process.StartedTimestamp) < _settings.RestartDeadline)
            {
                fleet.ThrowIfExited();
                if (!await ProbeIntoAsync(path, process.StartedTimestamp, probes))
                {
                    failures++;
                    await Task.Delay(ProbePause, _cancellationToken);
                    continue;
                }

                if (probes[^1].P50 <= SteadyFactor * reference)
                {
                    steady = probes[^1].Seconds;
                    break;
                }
            }

            var label = path.Name;
            _report.Add(section, $"processes.restart.{name}_first_success_seconds", $"{label}: first probe that succeeded, seconds after the process started", probes.Count > 0 ? probes[0].Seconds : double.NaN, "s", "F2");
            _report.Add(section, $"processes.restart.{name}_first_probe_p50_ms", $"{label}: its round-trip p50", probes.Count > 0 ? probes[0].P50 : double.NaN, "ms", "F3");
            _report.Add(section, $"processes.restart.{name}_steady_seconds", $"{label}: first probe with p50 ≤ {SteadyFactor} × warm p50 ({reference:F3} ms), seconds after the process started", steady, "s", "F2");
            _report.Add(section, $"processes.restart.{name}_failed_probes", $"{label}: failed probes before", failures, "", "F0");
            _report.Runs($"processes.restart.{name}_probe_seconds", probes.Select(p => p.Seconds));
            _report.Runs($"processes.restart.{name}_probe_p50_ms", probes.Select(p => p.P50));
        }

        _report.Note(section, $"Node 2 (a relay of the probed route) stopped with SIGTERM and started again with the same data directory and port (a rolling restart); "
            + $"probes as in the cold start, {ProbePause.TotalMilliseconds:F0} ms apart after a failure, until one is within {SteadyFactor} × the warm p50 or {_settings.RestartDeadline.TotalSeconds:F0} s; then chain hop 2 the same way. NaN: not reached.");
        _report.AddTarget("processes.restart.tunnel_steady_seconds", "a restarted node reaches ≤ 1.2 × warm p50 round trip within 5 s of its start", atMost: true, 5);
    }

    private sealed record ColdStart(double FormedSeconds, double ChainReadySeconds, double NodesCpuToFormed, double NodesCoresBusy, double ChainCoresBusy,
        double WindowStartSeconds, double WindowSeconds, List<(double Seconds, double P50)> TunnelProbes, List<(double Seconds, double P50)> ChainProbes, int Failures)
    {
        public double QuietSeconds { get; init; } = double.NaN;
    }
}
