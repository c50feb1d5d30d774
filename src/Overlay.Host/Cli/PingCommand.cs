using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;
using Overlay.Errors;
using Overlay.Host.Directory;
using Overlay.Host.Options;
using Overlay.Host.Tunnels;
using Overlay.Identity;
using Overlay.Protocol;

namespace Overlay.Host.Cli;

/// <summary>The <c>ping</c> verb's command line.</summary>
public sealed record PingOptions
{
    /// <summary>Link URLs to join through (at least one).</summary>
    public IReadOnlyList<Uri> Seeds { get; init; } = [];

    /// <summary>Relays per round trip.</summary>
    public int Relays { get; init; }

    /// <summary>Round trips to send.</summary>
    public int Count { get; init; } = 1;

    /// <summary>The destination; null picks a random up peer for each round trip.</summary>
    public NodeId? To { get; init; }

    /// <summary>How long joining may take; also each round trip's deadline (rounded up to a deadline class).</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The network's MaxRelays; must match the other nodes'.</summary>
    public int MaxRelays { get; init; } = NetworkParameters.DefaultMaxRelays;

    /// <summary>Extra <c>--Overlay:Section:Key=value</c> configuration for the short-lived node (cell size, construction...).</summary>
    public IReadOnlyList<string> Configuration { get; init; } = [];

    /// <summary>
    /// Parses <c>--seed URL --relays R [--count K] [--to NODE_ID] [--timeout SECONDS] [--max-relays M]
    /// [--Overlay:Section:Key=value ...]</c>. <c>--seed</c> may be repeated.
    /// </summary>
    public static bool TryParse(IReadOnlyList<string> args, out PingOptions options, out string? problem)
    {
        options = new PingOptions();
        var seeds = new List<Uri>();
        var configuration = new List<string>();
        var relays = (int?)null;
        for (var i = 0; i < args.Count; i++)
        {
            var name = args[i];
            if (name.StartsWith("--Overlay:", StringComparison.OrdinalIgnoreCase) && name.Contains('=', StringComparison.Ordinal))
            {
                configuration.Add(name);
                continue;
            }

            var value = i + 1 < args.Count ? args[++i] : null;
            var number = 0L;
            var isNumber = value is not null && long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out number);
            switch (name)
            {
                case "--seed" when Uri.TryCreate(value, UriKind.Absolute, out var seed) && seed.Scheme is "http" or "https":
                    seeds.Add(seed);
                    break;
                case "--relays" when isNumber && number <= NetworkParameters.MaxRelaysLimit:
                    relays = (int)number;
                    break;
                case "--count" when isNumber && number is >= 1 and <= 1_000_000:
                    options = options with { Count = (int)number };
                    break;
                case "--to" when NodeId.TryParse(value, out var to):
                    options = options with { To = to };
                    break;
                case "--timeout" when double.TryParse(value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var seconds) && seconds is > 0 and <= 86_400:
                    options = options with { Timeout = TimeSpan.FromSeconds(seconds) };
                    break;
                case "--max-relays" when isNumber && number is >= 1 and <= NetworkParameters.MaxRelaysLimit:
                    options = options with { MaxRelays = (int)number };
                    break;
                default:
                    problem = $"bad or unknown argument '{name}{(value is null ? "" : " " + value)}'";
                    return false;
            }
        }

        options = options with { Seeds = seeds, Configuration = configuration, Relays = relays ?? 0 };
        problem = seeds.Count == 0 ? "--seed URL is required"
            : relays is null ? "--relays R is required"
            : relays > options.MaxRelays ? $"--relays {relays} exceeds --max-relays {options.MaxRelays}"
            : null;
        return problem is null;
    }
}

/// <summary>
/// A one-shot probe of a running overlay: a short-lived node (loopback, port 0, a temporary data
/// directory) joins through the seeds, waits until enough peers are up, sends round trips of 64
/// random bytes through R relays, prints one line per round trip and a summary, and leaves.
/// While it lives it is a full node: others may learn it and route through it.
/// </summary>
public static class PingCommand
{
    /// <summary>Every round trip succeeded.</summary>
    public const int Success = 0;

    /// <summary>A round trip failed (a typed tunnel error, or a reply that differs from the request).</summary>
    public const int TunnelFailed = 1;

    /// <summary>Bad arguments or configuration.</summary>
    public const int UsageError = 2;

    /// <summary>The node could not start, or not enough peers were up within the timeout.</summary>
    public const int NotJoined = 3;

    /// <summary>Interrupted (Ctrl+C, SIGTERM) before it finished.</summary>
    public const int Interrupted = 130;

    /// <summary>The payload size of one round trip.</summary>
    public const int PayloadBytes = 64;

    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(5);

    /// <summary>Runs the probe; returns the process exit code.</summary>
    public static async Task<int> RunAsync(PingOptions options, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        var data = System.IO.Directory.CreateTempSubdirectory("overlay-ping-");
        OverlayNode? node = null;
        // Cancelled by the caller, or when the node's host stops (SIGTERM, SIGINT).
        using var run = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var clock = Stopwatch.StartNew();
        try
        {
            try
            {
                node = CreateNode(options, data.FullName);
                node.App.Lifetime.ApplicationStopping.Register(run.Cancel);
                await node.StartAsync(run.Token);
            }
            catch (OptionsValidationException invalid)
            {
                error.WriteLine($"ping: bad configuration: {string.Join("; ", invalid.Failures)}");
                return UsageError;
            }
            catch (Exception exception) when (exception is IOException or InvalidOperationException)
            {
                error.WriteLine($"ping: the node could not start: {exception.Message}");
                return NotJoined;
            }

            var seeds = string.Join(", ", options.Seeds.Select(s => s.OriginalString));
            output.WriteLine($"ping: node {node.Id.ToShortString()} joining through {seeds}");
            using (var join = CancellationTokenSource.CreateLinkedTokenSource(run.Token))
            {
                join.CancelAfter(options.Timeout);
                try
                {
                    await WaitForPeersAsync(node.Directory, options, join.Token);
                }
                catch (OperationCanceledException) when (!run.IsCancellationRequested)
                {
                    error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"ping: could not join through {seeds} within {options.Timeout.TotalSeconds:0.###} s: {Shortfall(node.Directory, options)}"));
                    return NotJoined;
                }
            }

            var up = node.Directory.UpCount;
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"ping: {up} {(up == 1 ? "peer" : "peers")} up after {clock.Elapsed.TotalSeconds:F2} s"));
            return await PingAsync(node, options, output, run.Token);
        }
        // A tunnel cancelled by its owner currently surfaces as the gRPC call's Cancelled status.
        catch (Exception exception) when (run.IsCancellationRequested && exception is OperationCanceledException or RpcException { StatusCode: StatusCode.Cancelled })
        {
            error.WriteLine("ping: interrupted");
            return Interrupted;
        }
        finally
        {
            if (node is not null)
            {
                await StopAsync(node, error);
            }

            try
            {
                data.Delete(recursive: true);
            }
            catch (IOException exception)
            {
                error.WriteLine($"ping: could not delete {data.FullName}: {exception.Message}");
            }
        }
    }

    private static OverlayNode CreateNode(PingOptions options, string dataDirectory)
    {
        // These must hold whatever the environment says; everything else (cell size, construction,
        // deadlines...) comes from the environment or --Overlay:... arguments, which may also
        // override the faster-than-default gossip given first here.
        var configuration = new Dictionary<string, string?>
        {
            // TLS like the network it joins: a TLS node dials no cleartext seed, and a cleartext one presents no certificate.
            ["Overlay:Link:Url"] = options.Seeds.All(seed => seed.Scheme == Uri.UriSchemeHttps) ? "https://127.0.0.1:0" : "http://127.0.0.1:0",
            ["Overlay:Link:AdvertisedUrl"] = null,
            ["Overlay:DataDirectory"] = dataDirectory,
            ["Overlay:Network:MaxRelays"] = options.MaxRelays.ToString(CultureInfo.InvariantCulture),
        };
        for (var i = 0; i < options.Seeds.Count; i++)
        {
            configuration[string.Create(CultureInfo.InvariantCulture, $"Overlay:Directory:Seeds:{i}")] = options.Seeds[i].OriginalString;
        }

        // Seeds on this host mean a network on this host (the devnet, deploy/local): its peers are on
        // loopback too. Any other network is dialed under the default refusal of non-public addresses.
        if (options.Seeds.Any(seed => seed.IsLoopback))
        {
            configuration = SingleHostNetwork.With(configuration);
        }

        return OverlayNode.Create(new OverlayNodeSettings
        {
            Args = ["--Overlay:Directory:GossipInterval=00:00:01", .. options.Configuration],
            Configuration = configuration,
            ConfigureLogging = logging =>
            {
                logging.SetMinimumLevel(LogLevel.Warning);
                // Warnings go to stderr: stdout carries only the results.
                logging.Services.Configure<ConsoleLoggerOptions>(console => console.LogToStandardErrorThreshold = LogLevel.Trace);
            },
        });
    }

    private static async Task WaitForPeersAsync(PeerDirectory directory, PingOptions options, CancellationToken cancellationToken)
    {
        while (true)
        {
            var changed = directory.WaitForChangeAsync(cancellationToken);
            if (HasEnoughPeers(directory, options))
            {
                return;
            }

            await changed;
        }
    }

    private static bool HasEnoughPeers(PeerDirectory directory, PingOptions options) => options.To is { } to
        ? directory.Find(to) is { Status: PeerStatus.Up } && directory.UpCount - 1 >= options.Relays
        : directory.UpCount >= options.Relays + 1;

    private static string Shortfall(PeerDirectory directory, PingOptions options)
    {
        var up = directory.UpCount;
        var needed = string.Create(CultureInfo.InvariantCulture, $"{options.Relays + 1} needed for {options.Relays} relays and a destination");
        if (options.To is { } to && directory.Find(to) is not { Status: PeerStatus.Up })
        {
            return $"destination {to.ToShortString()} is not up ({up} peers up, {needed})";
        }

        return up == 0
            ? $"no peer is up (is the seed running, with the same network parameters?); {needed}"
            : string.Create(CultureInfo.InvariantCulture, $"{up} peers up, {needed}");
    }

    private static async Task<int> PingAsync(OverlayNode node, PingOptions options, TextWriter output, CancellationToken cancellationToken)
    {
        var times = new List<double>();
        var payload = new byte[PayloadBytes];
        var failures = 0;
        for (var k = 1; k <= options.Count; k++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            RandomNumberGenerator.Fill(payload);
            try
            {
                var request = new TunnelRequest { Destination = options.To, Relays = options.Relays, Deadline = options.Timeout };
                var trip = await node.Tunnels.RoundTripAsync(request, payload, cancellationToken: cancellationToken);
                var destination = trip.Route[^1].ToShortString();
                if (!trip.Reply.AsSpan().SequenceEqual(payload))
                {
                    failures++;
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"ping {k}: failed: the reply from {destination} differs from the request ({trip.Reply.Length} bytes back)"));
                    continue;
                }

                times.Add(trip.Elapsed.TotalMilliseconds);
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"ping {k}: {trip.Route.Count - 1} relays, {trip.Route.Count} hops, to {destination}: {trip.Elapsed.TotalMilliseconds:F1} ms"));
            }
            catch (TunnelException failure) when (!cancellationToken.IsCancellationRequested)
            {
                failures++;
                var where = failure.Hop > 0 ? string.Create(CultureInfo.InvariantCulture, $"at hop {failure.Hop}") : "at the origin";
                output.WriteLine($"ping {k}: failed: {failure.Kind.ToTag()} {where}: {failure.Message}");
            }
        }

        var summary = string.Create(CultureInfo.InvariantCulture,
            $"summary: {times.Count} of {options.Count} round trips through {options.Relays} relays succeeded");
        if (times.Count > 0)
        {
            times.Sort();
            summary += string.Create(CultureInfo.InvariantCulture, $": min {times[0]:F1} ms, median {times[times.Count / 2]:F1} ms, max {times[^1]:F1} ms");
        }

        output.WriteLine(summary);
        return failures == 0 ? Success : TunnelFailed;
    }

    private static async Task StopAsync(OverlayNode node, TextWriter error)
    {
        using var stop = new CancellationTokenSource(StopTimeout);
        try
        {
            await node.StopAsync(stop.Token);
        }
        catch (OperationCanceledException)
        {
            // The rest of the graceful stop is aborted by disposing the node below.
            error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"ping: the node took longer than {StopTimeout.TotalSeconds:0} s to stop; aborting the rest"));
        }

        await node.DisposeAsync();
    }
}
