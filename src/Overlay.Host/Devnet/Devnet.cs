using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using Overlay.Errors;
using Overlay.Host.Options;
using Overlay.Host.Tunnels;
using Overlay.Protocol;

namespace Overlay.Host.Devnet;

/// <summary>The devnet's command line.</summary>
public sealed record DevnetOptions
{
    /// <summary>Nodes to start (at least 2).</summary>
    public int Nodes { get; init; } = 8;

    /// <summary>Relays per round trip.</summary>
    public int Relays { get; init; } = 6;

    /// <summary>Round trips to send.</summary>
    public int Pings { get; init; } = 5;

    /// <summary>Bytes to stream through one tunnel and back (0 = none).</summary>
    public long Bytes { get; init; }

    /// <summary>How long the overlay may take to form.</summary>
    public TimeSpan FormTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Parses <c>--nodes N --relays R --pings K --bytes B</c>.</summary>
    public static bool TryParse(IReadOnlyList<string> args, out DevnetOptions options, out string? problem)
    {
        options = new DevnetOptions();
        for (var i = 0; i < args.Count; i += 2)
        {
            var value = i + 1 < args.Count ? args[i + 1] : null;
            long number = 0;
            var ok = value is not null && long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out number);
            switch (args[i])
            {
                case "--nodes" when ok && number is >= 2 and <= 1024: options = options with { Nodes = (int)number }; break;
                case "--relays" when ok && number <= NetworkParameters.MaxRelaysLimit: options = options with { Relays = (int)number }; break;
                case "--pings" when ok && number <= 1_000_000: options = options with { Pings = (int)number }; break;
                case "--bytes" when ok: options = options with { Bytes = number }; break;
                default:
                    problem = $"bad or unknown argument '{args[i]}{(value is null ? "" : " " + value)}'";
                    return false;
            }
        }

        problem = options.Relays > options.Nodes - 2
            ? $"--relays {options.Relays} needs at least {options.Relays + 2} nodes (origin, relays, destination)"
            : null;
        return problem is null;
    }
}

/// <summary>
/// A local overlay in one process: N real nodes (real Kestrel, real gRPC on loopback) that find
/// each other from one seed, then round trips and an optional bulk transfer through R relays.
/// </summary>
public static class Devnet
{
    /// <summary>Runs the devnet; returns the process exit code.</summary>
    public static async Task<int> RunAsync(DevnetOptions options, TextWriter output, CancellationToken cancellationToken)
    {
        var maxRelays = Math.Max(NetworkParameters.DefaultMaxRelays, options.Relays);
        var root = System.IO.Directory.CreateTempSubdirectory("overlay-devnet-");
        var nodes = new List<OverlayNode>();
        var clock = Stopwatch.StartNew();
        try
        {
            output.WriteLine($"devnet: starting {options.Nodes} nodes on loopback (MaxRelays {maxRelays})");
            var seed = CreateNode(root.FullName, 0, options.Nodes, maxRelays, seed: null);
            nodes.Add(seed);
            await seed.StartAsync(cancellationToken);
            var others = Enumerable.Range(1, options.Nodes - 1).Select(i => CreateNode(root.FullName, i, options.Nodes, maxRelays, seed.LinkEndpoint.ToString())).ToList();
            nodes.AddRange(others);
            await Task.WhenAll(others.Select(n => n.StartAsync(cancellationToken)));
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"devnet: {options.Nodes} nodes listening after {clock.Elapsed.TotalSeconds:F2} s; waiting for the directory to converge"));

            using var form = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            form.CancelAfter(options.FormTimeout);
            await WaitForDirectoryAsync(nodes, form.Token);
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"devnet: every node knows the other {options.Nodes - 1} after {clock.Elapsed.TotalSeconds:F2} s"));

            var origin = nodes[0];
            var times = new List<double>();
            var ping = new byte[64];
            for (var k = 1; k <= options.Pings; k++)
            {
                RandomNumberGenerator.Fill(ping);
                var destination = nodes[1 + Random.Shared.Next(nodes.Count - 1)].Id;
                var trip = await origin.Tunnels.RoundTripAsync(new TunnelRequest { Destination = destination, Relays = options.Relays }, ping, cancellationToken: cancellationToken);
                if (!trip.Reply.AsSpan().SequenceEqual(ping))
                {
                    output.WriteLine($"ping {k}: the reply differs from the request");
                    return 1;
                }

                times.Add(trip.Elapsed.TotalMilliseconds);
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"ping {k}: {trip.Route.Count - 1} relays, {trip.Route.Count} hops, to {destination.ToShortString()}: {trip.Elapsed.TotalMilliseconds:F1} ms"));
            }

            if (times.Count > 0)
            {
                times.Sort();
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"summary: {times.Count} round trips through {options.Relays} relays: min {times[0]:F1} ms, median {times[times.Count / 2]:F1} ms, max {times[^1]:F1} ms"));
            }

            if (options.Bytes > 0)
            {
                await StreamAsync(origin, nodes[^1], options, output, cancellationToken);
            }

            return 0;
        }
        catch (TunnelException failure)
        {
            output.WriteLine($"devnet: tunnel failed: {failure.Kind.ToTag()} at hop {failure.Hop}: {failure.Message}");
            return 1;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            var known = nodes.Select(n => n.Directory.UpCount).DefaultIfEmpty().Min();
            output.WriteLine($"devnet: the overlay did not form within {options.FormTimeout.TotalSeconds:F0} s (the worst node knows {known} of {options.Nodes - 1} peers)");
            return 1;
        }
        finally
        {
            await Task.WhenAll(nodes.Select(async n =>
            {
                await n.StopAsync(CancellationToken.None);
                await n.DisposeAsync();
            }));
            root.Delete(recursive: true);
        }
    }

    private static OverlayNode CreateNode(string root, int index, int nodes, int maxRelays, string? seed)
    {
        // Gossip fast on small overlays; on large ones every node gossiping 4 times a second only burns the 2 cores.
        var gossip = nodes <= 32 ? "00:00:00.250" : "00:00:01";
        var configuration = new Dictionary<string, string?>
        {
            ["Overlay:DataDirectory"] = Path.Combine(root, $"node{index}"),
            ["Overlay:Link:Url"] = "https://127.0.0.1:0",
            ["Overlay:Network:MaxRelays"] = maxRelays.ToString(CultureInfo.InvariantCulture),
            ["Overlay:Directory:GossipInterval"] = gossip,
            ["Overlay:Directory:GossipFanout"] = "3",
            ["Logging:LogLevel:Default"] = Environment.GetEnvironmentVariable("OVERLAY_DEVNET_DEBUG") == "1" ? "Debug" : "Warning",
        };
        if (seed is not null)
        {
            configuration["Overlay:Directory:Seeds:0"] = seed;
        }

        return OverlayNode.Create(new OverlayNodeSettings
        {
            Configuration = SingleHostNetwork.With(configuration),
        });
    }

    private static async Task WaitForDirectoryAsync(IReadOnlyList<OverlayNode> nodes, CancellationToken cancellationToken)
    {
        foreach (var node in nodes)
        {
            await node.Directory.WaitUntilAsync(d => d.UpCount >= nodes.Count - 1, cancellationToken);
        }
    }

    private static async Task StreamAsync(OverlayNode origin, OverlayNode destination, DevnetOptions options, TextWriter output, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        await using var tunnel = await origin.Tunnels.OpenAsync(new TunnelRequest
        {
            Destination = destination.Id,
            Relays = options.Relays,
            Deadline = TimeSpan.FromHours(1),
        }, cancellationToken);
        var chunk = new byte[tunnel.PreferredWriteSize];
        RandomNumberGenerator.Fill(chunk);
        var writer = Task.Run(async () =>
        {
            for (var sent = 0L; sent < options.Bytes;)
            {
                var count = (int)Math.Min(chunk.Length, options.Bytes - sent);
                sent += count;
                await tunnel.WriteAsync(chunk.AsMemory(0, count), final: sent == options.Bytes, cancellationToken);
            }
        }, cancellationToken);
        var buffer = new byte[chunk.Length];
        long received = 0;
        int read;
        while ((read = await tunnel.ReadAsync(buffer, cancellationToken)) > 0)
        {
            received += read;
        }

        await writer;
        var seconds = clock.Elapsed.TotalSeconds;
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"stream: {options.Bytes:N0} bytes each way through {tunnel.RelayCount} relays in {seconds:F2} s ({options.Bytes / seconds / (1 << 20):F1} MiB/s each way); echoed {received:N0} bytes"));
        if (received != options.Bytes)
        {
            throw new TunnelException(TunnelErrorKind.Truncated, 0, $"echoed {received} of {options.Bytes} bytes");
        }
    }
}
