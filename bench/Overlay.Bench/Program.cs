using Overlay.Bench.Network;
using Overlay.Bench.Processes;

namespace Overlay.Bench;

internal static class Program
{
    private const string Usage = """
        usage: Overlay.Bench [network] [--quick] [--json FILE] [--only PHASES]   tunnels against a plain gRPC chain on real nodes (the default)
               Overlay.Bench crypto [--quick]                                    header and cell micro-benchmarks (BenchmarkDotNet)
               Overlay.Bench all [--quick] [--json FILE]                         both; the JSON file gets the crypto medians too
               Overlay.Bench tls [--quick] [--json FILE]                         h2c and TLS links side by side: throughput, RTT, fresh tunnels, plain chain, handshake cost
               Overlay.Bench profile WORKLOAD [--relays N] [--seconds S] [--phases]  one workload alone, in a loop, for a CPU profiler
               Overlay.Bench soak [--trips N] [--nodes N] [--seed S] [--kill-every K]  random round trips over 0-32 relays while nodes are killed
               Overlay.Bench fairness [--trips N] [--flood-streams S] [--shared]   tunnels through one previous hop while another floods headers
               Overlay.Bench processes [--quick] [--json FILE] [--nodes N] [--host PATH] [--env K=V]... [--node-arg ARG]...
                                                                                 node processes on the control API against a plain chain of processes

          --quick        fewer and shorter runs (under 2 minutes); the default is the full run (under 10)
          --json FILE    also write every figure, ratio and target to FILE
          --only PHASES  comma-separated subset of: streaming, scale, throughput, latency, first-reply, streams
          WORKLOAD       tunnel or chain (bulk echo), tunnel-fresh or chain-fresh (first reply on a fresh path),
                         tunnel-rtt or chain-rtt (64-byte round trips on an established path), tunnel-stream (new streams on a kept route); 3 relays and 30 s by default
          --phases       also time every span of the tunnels and print the median per span name
          --trips N      soak: round trips (1,000 by default), 4 at a time, 30 s deadline each; exit 1 on any hang, untyped failure or wrong reply
          --nodes N      soak: nodes (34 by default: 32 relays, the origin and the destination); at least 3
          --seed S       soak: the seed of the relay counts, request sizes and kill targets (1 by default)
          --kill-every K soak: every K-th trip kills a random node other than the origin and starts a new one (50 by default; 0: none)
          --trips N      fairness: round trips per phase (400 by default)
          --flood-streams S  fairness: the flooder's streams in flight (40 by default: 10 x the tunnels')
          --shared       fairness: nodes and flooder on every CPU (by default the nodes run on CPU 0, the flooder on CPU 1)
          --nodes N      processes: node processes, and as many chain hops (9 by default; at least 5)
          --host PATH    processes: the node binary, an Overlay.Host.dll or a published executable (default: this repository's Release build)
          --env K=V      processes: an environment variable for every started process (e.g. DOTNET_TieredPGO=0); repeatable
          --node-arg ARG processes: one more node argument (e.g. --Overlay:Telemetry:OtlpEndpoint=http://127.0.0.1:4317); repeatable
        """;

    private static async Task<int> Main(string[] args)
    {
        var verb = args.Length == 0 || args[0].StartsWith('-') ? "network" : args[0];
        if (verb == "profile")
        {
            return await ProfileAsync(args[1..]);
        }

        if (verb == "soak")
        {
            return await SoakAsync(args[1..]);
        }

        if (verb == "fairness")
        {
            using var stopFairness = new CancellationTokenSource();
            Console.CancelKeyPress += (_, e) =>
            {
                e.Cancel = true;
                stopFairness.Cancel();
            };
            var fairness = await Fairness.FairnessCommand.RunAsync(args[1..], Console.Out, stopFairness.Token);
            return fairness == 2 ? PrintUsage() : fairness;
        }

        if (verb == "flood")
        {
            // The fairness verb's flooder, started by it.
            return await Fairness.FloodCommand.RunAsync(args[1..]);
        }

        if (verb == "processes")
        {
            return await ProcessesAsync(args);
        }

        if (verb == "chain-hop")
        {
            return args is [_, "--url", var url, "--data", var data] ? await ChainHopCommand.RunAsync(url, data) : PrintUsage();
        }

        var rest = args.Length > 0 && !args[0].StartsWith('-') ? args[1..] : args;
        if (!TryParse(rest, out var quick, out var json, out var only) || (verb == "crypto" && (json is not null || only is not null)))
        {
            return PrintUsage();
        }

        switch (verb)
        {
            case "crypto":
                return CryptoCommand.Run(quick, report: null);
            case "tls":
            case "network":
            case "all":
                var report = new Report();
                report.Context["command"] = string.Join(' ', ["Overlay.Bench", .. args]);
                report.Context["commit"] = Commit();
                report.Context["date"] = DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", System.Globalization.CultureInfo.InvariantCulture);
                var code = verb == "all" ? CryptoCommand.Run(quick, report) : 0;
                using (var stop = new CancellationTokenSource())
                {
                    Console.CancelKeyPress += (_, e) =>
                    {
                        e.Cancel = true;
                        stop.Cancel();
                    };
                    code = Math.Max(code, verb == "tls"
                        ? await TlsCommand.RunAsync(quick, report, Console.Out, stop.Token)
                        : await NetworkCommand.RunAsync(new NetworkSettings(quick) { Phases = only ?? NetworkSettings.AllPhases.ToHashSet() }, report, Console.Out, stop.Token));
                }

                report.Print(Console.Out);
                if (json is not null)
                {
                    report.WriteJson(json);
                    Console.WriteLine();
                    Console.WriteLine($"wrote {Path.GetFullPath(json)}");
                }

                return code;
            default:
                return PrintUsage();
        }
    }

    private static async Task<int> ProfileAsync(string[] args)
    {
        var relays = 3;
        var seconds = 30;
        var phases = false;
        if (args.Length == 0 || !ProfileCommand.Workloads.Contains(args[0]))
        {
            return PrintUsage();
        }

        for (var i = 1; i < args.Length; i++)
        {
            var parsed = args[i] switch
            {
                "--relays" when i + 1 < args.Length => int.TryParse(args[++i], out relays) && relays is >= 0 and <= 32,
                "--seconds" when i + 1 < args.Length => int.TryParse(args[++i], out seconds) && seconds > 0,
                "--phases" => phases = true,
                _ => false,
            };
            if (!parsed)
            {
                return PrintUsage();
            }
        }

        using var stop = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            stop.Cancel();
        };
        return await ProfileCommand.RunAsync(args[0], relays, TimeSpan.FromSeconds(seconds), phases, Console.Out, stop.Token);
    }

    private static async Task<int> SoakAsync(string[] args)
    {
        var trips = SoakCommand.DefaultTrips;
        var nodes = SoakCommand.DefaultNodes;
        var seed = SoakCommand.DefaultSeed;
        var killEvery = SoakCommand.DefaultKillEvery;
        for (var i = 0; i < args.Length; i++)
        {
            var parsed = args[i] switch
            {
                "--trips" when i + 1 < args.Length => int.TryParse(args[++i], out trips) && trips > 0,
                "--nodes" when i + 1 < args.Length => int.TryParse(args[++i], out nodes) && nodes >= 3,
                "--seed" when i + 1 < args.Length => int.TryParse(args[++i], out seed),
                "--kill-every" when i + 1 < args.Length => int.TryParse(args[++i], out killEvery) && killEvery >= 0,
                _ => false,
            };
            if (!parsed)
            {
                return PrintUsage();
            }
        }

        using var stop = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            stop.Cancel();
        };
        return await SoakCommand.RunAsync(trips, nodes, seed, killEvery, Console.Out, stop.Token);
    }

    private static async Task<int> ProcessesAsync(string[] args)
    {
        var quick = false;
        var nodes = 9;
        string? host = null;
        string? json = null;
        var environment = new Dictionary<string, string>();
        var nodeArguments = new List<string>();
        for (var i = 1; i < args.Length; i++)
        {
            var hasValue = i + 1 < args.Length;
            switch (args[i])
            {
                case "--quick":
                    quick = true;
                    break;
                case "--json" when hasValue:
                    json = args[++i];
                    break;
                case "--nodes" when hasValue && int.TryParse(args[i + 1], out nodes) && nodes >= 5:
                    i++;
                    break;
                case "--host" when hasValue && File.Exists(args[i + 1]):
                    host = Path.GetFullPath(args[++i]);
                    break;
                case "--env" when hasValue && args[i + 1].Split('=', 2) is [{ Length: > 0 } key, var value] && environment.TryAdd(key, value):
                    i++;
                    break;
                case "--node-arg" when hasValue:
                    nodeArguments.Add(args[++i]);
                    break;
                default:
                    return PrintUsage();
            }
        }

        var settings = new ProcessesSettings(quick) { Nodes = nodes };
        if (host is not null)
        {
            settings = settings with { HostPath = host };
        }

        settings = settings with { Environment = environment, NodeArguments = nodeArguments };
        var report = new Report { Title = "Multi-process harness" };
        report.Context["command"] = string.Join(' ', ["Overlay.Bench", .. args]);
        report.Context["commit"] = Commit();
        report.Context["date"] = DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", System.Globalization.CultureInfo.InvariantCulture);
        using var stop = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            stop.Cancel();
        };
        int code;
        try
        {
            code = await ProcessesCommand.RunAsync(settings, report, Console.Out, stop.Token);
        }
        catch (Exception exception) when (exception is InvalidOperationException or OperationCanceledException or Grpc.Core.RpcException or IOException)
        {
            // A process exited, the overlay did not form in time, or a path failed outside a probe: no figures to trust.
            Console.Error.WriteLine($"processes: {exception}");
            return 1;
        }

        report.Print(Console.Out);
        if (json is not null)
        {
            report.WriteJson(json);
            Console.WriteLine();
            Console.WriteLine($"wrote {Path.GetFullPath(json)}");
        }

        return code;
    }

    private static bool TryParse(string[] args, out bool quick, out string? json, out HashSet<string>? only)
    {
        quick = false;
        json = null;
        only = null;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--quick":
                    quick = true;
                    break;
                case "--json" when i + 1 < args.Length:
                    json = args[++i];
                    break;
                case "--only" when i + 1 < args.Length:
                    only = [.. args[++i].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];
                    if (!only.IsSubsetOf(NetworkSettings.AllPhases))
                    {
                        return false;
                    }

                    break;
                default:
                    return false;
            }
        }

        return true;
    }

    // The commit the figures belong to; "unknown" outside a git work tree.
    private static string Commit()
    {
        try
        {
            using var git = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("git", "rev-parse --short HEAD")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                WorkingDirectory = Environment.CurrentDirectory,
            });
            if (git is null)
            {
                return "unknown";
            }

            var commit = git.StandardOutput.ReadToEnd().Trim();
            git.WaitForExit();
            if (git.ExitCode != 0 || commit.Length == 0)
            {
                return "unknown";
            }

            using var status = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("git", "status --porcelain --untracked-files=no")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                WorkingDirectory = Environment.CurrentDirectory,
            });
            var dirty = status is not null && status.StandardOutput.ReadToEnd().Trim().Length > 0;
            status?.WaitForExit();
            return dirty ? commit + " (with uncommitted changes)" : commit;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return "unknown";
        }
    }

    private static int PrintUsage()
    {
        Console.Error.WriteLine(Usage);
        return 2;
    }
}
