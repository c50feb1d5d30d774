using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Overlay.Errors;
using Overlay.Host;
using Overlay.Host.Directory;
using Overlay.Host.Options;
using Overlay.Host.Tunnels;

namespace Overlay.Bench.Network;

/// <summary>
/// <c>soak [--trips N] [--nodes N] [--seed S] [--kill-every K]</c>: round trips from node 0 over 0..32
/// relays (as many as the origin's up peers allow) with log-uniform request sizes of 1 byte to 256 KiB
/// to a destination the node picks, <see cref="Parallel"/> at a time, while every K-th trip kills a
/// random node other than node 0 (as a crash looks) and starts a new one in its place. Every trip must
/// end in the echo of its request or a <see cref="TunnelException"/> within its deadline plus a grace;
/// anything else (a hang, an untyped exception, a wrong reply) makes the exit code 1.
/// </summary>
internal static class SoakCommand
{
    public const int DefaultTrips = 1000;
    public const int DefaultNodes = 34;
    public const int DefaultSeed = 1;
    public const int DefaultKillEvery = 50;

    /// <summary>Trips in flight at once, so that kills land on trips under way.</summary>
    public const int Parallel = 4;

    /// <summary>Each trip's tunnel deadline (a deadline class exactly).</summary>
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    /// <summary>Past the deadline, how long a trip may take to report before it counts as a hang.</summary>
    public static readonly TimeSpan Grace = TimeSpan.FromSeconds(10);

    private const int MaxRequestBytes = 256 * 1024;
    private const int MaxRelays = 32;

    // How long a killed node is left dead before its replacement starts, unless the origin finds it down sooner.
    private static readonly TimeSpan FindDownTimeout = TimeSpan.FromSeconds(5);

    // A kill, the wait above, the replacement's start and its gossip to every node (seconds at 1 s gossip).
    private static readonly TimeSpan ReplaceTimeout = TimeSpan.FromSeconds(90);

    // Gossip keeps running (replacements must become known, and dead nodes be found down), at 1 s rather
    // than the cluster's 200 ms so that 34 nodes do not spend the cores on it.
    private static readonly Dictionary<string, string?> Gossip = new()
    {
        ["Overlay:Directory:GossipInterval"] = "00:00:01",
        // Every failure is counted and typed in the table; the nodes' warning per failed tunnel would bury it.
        ["Logging:LogLevel:Overlay"] = "Error",
    };

    public static async Task<int> RunAsync(int trips, int nodes, int seed, int killEvery, TextWriter log, CancellationToken cancellationToken)
    {
        var random = new Random(seed);
        var relaysDrawn = new int[trips];
        var sizes = new int[trips];
        for (var i = 0; i < trips; i++)
        {
            relaysDrawn[i] = random.Next(0, MaxRelays + 1);
            sizes[i] = LogUniformSize(random);
        }

        var killTargets = new int[killEvery > 0 ? trips / killEvery : 0];
        for (var k = 0; k < killTargets.Length; k++)
        {
            killTargets[k] = random.Next(1, nodes);
        }

        log.WriteLine($"soak: starting {nodes} nodes (gossip every 1 s)");
        var clock = Stopwatch.StartNew();
        await using var cluster = await BenchCluster.StartAsync(nodes, TimeSpan.FromSeconds(120), cancellationToken, Gossip, pauseGossip: false);
        var origin = cluster[0].Node;
        var network = origin.Services.GetRequiredService<IOptions<OverlayOptions>>().Value.Network;
        if (network.MaxRelays < MaxRelays)
        {
            log.WriteLine($"soak: the network's MaxRelays is {network.MaxRelays}; 32-relay routes need 32");
            return 2;
        }

        log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"soak: {nodes} nodes up in {clock.Elapsed.TotalSeconds:F1} s; {trips} trips, {Parallel} at a time, seed {seed}, {(killEvery > 0 ? $"a kill every {killEvery} trips" : "no kills")}"));
        var outcomes = new SoakTrip[trips];
        var next = -1;
        var done = 0;
        var kills = 0;
        var churn = 0;
        using var replacing = new SemaphoreSlim(1, 1);
        clock.Restart();

        async Task WorkerAsync()
        {
            while (true)
            {
                var i = Interlocked.Increment(ref next);
                if (i >= trips)
                {
                    return;
                }

                if (killEvery > 0 && i > 0 && i % killEvery == 0)
                {
                    // This worker replaces a node while the others keep their trips in flight.
                    await replacing.WaitAsync(cancellationToken);
                    Volatile.Write(ref churn, 1);
                    try
                    {
                        await ReplaceAsync(cluster, killTargets[(i / killEvery) - 1], i, log, cancellationToken).WaitAsync(ReplaceTimeout, cancellationToken);
                        Interlocked.Increment(ref kills);
                    }
                    finally
                    {
                        Volatile.Write(ref churn, 0);
                        replacing.Release();
                    }
                }

                // Route to the destination needs relays + 1 up peers; dead nodes not yet found down still count.
                var relays = Math.Max(0, Math.Min(relaysDrawn[i], origin.Directory.UpCount - 1));
                var request = new byte[sizes[i]];
                new Random(seed ^ (i * 7919)).NextBytes(request);
                var duringChurn = Volatile.Read(ref churn) != 0;
                outcomes[i] = await TripAsync(origin, i, relays, request, log, cancellationToken) with { DuringChurn = duringChurn };
                var finished = Interlocked.Increment(ref done);
                if (finished % 100 == 0)
                {
                    log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"soak: {finished}/{trips} trips in {clock.Elapsed.TotalSeconds:F0} s"));
                }
            }
        }

        var workers = new Task[Parallel];
        for (var w = 0; w < workers.Length; w++)
        {
            workers[w] = Task.Run(WorkerAsync, cancellationToken);
        }

        await Task.WhenAll(workers);
        var elapsed = clock.Elapsed;
        return Print(outcomes, kills, elapsed, log);
    }

    // Kills the node, lets the trips run against its absence until the origin finds it down (or for at
    // most FindDownTimeout), then starts a new node in its place and waits until every node knows it.
    private static async Task ReplaceAsync(TestCluster cluster, int target, int trip, TextWriter log, CancellationToken cancellationToken)
    {
        var origin = cluster[0].Node;
        var killed = await cluster.KillAsync(target);
        var clock = Stopwatch.StartNew();
        var down = false;
        using (var findDown = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            findDown.CancelAfter(FindDownTimeout);
            try
            {
                await origin.Directory.WaitUntilAsync(d => d.Find(killed)?.Status != PeerStatus.Up, findDown.Token);
                down = true;
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // Not found down yet (no route took it, no gossip reached it): the replacement starts anyway.
            }
        }

        var foundDown = clock.Elapsed;
        var replacement = await cluster.ReplaceAsync(target, cancellationToken);
        foreach (var node in cluster.Nodes)
        {
            if (node != replacement)
            {
                await node.Directory.WaitUntilAsync(d => d.Find(replacement.Id)?.Status == PeerStatus.Up, cancellationToken);
            }
        }

        log.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"soak: trip {trip}: killed node {target} ({killed.ToShortString()}), {(down ? "down at the origin after" : "not down at the origin after")} {foundDown.TotalSeconds:F1} s; {replacement.Id.ToShortString()} in its place, known to all after {clock.Elapsed.TotalSeconds - foundDown.TotalSeconds:F1} s"));
    }

    private static async Task<SoakTrip> TripAsync(OverlayNode origin, int index, int relays, byte[] request, TextWriter log, CancellationToken cancellationToken)
    {
        var hangAfter = Deadline + Grace;
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bound.CancelAfter(hangAfter);
        var started = Stopwatch.GetTimestamp();
        var trip = origin.Tunnels.RoundTripAsync(new TunnelRequest { Relays = relays, Deadline = Deadline }, request, request.Length, bound.Token);
        double Elapsed() => Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        try
        {
            // The token ends the call at the deadline plus the grace; the wait bounds even a call that ignores it.
            var reply = await trip.WaitAsync(hangAfter + Grace, cancellationToken);
            var milliseconds = Elapsed();
            if (milliseconds > hangAfter.TotalMilliseconds)
            {
                return new SoakTrip(relays, request.Length, SoakResult.Hang, TunnelErrorKind.None, false, milliseconds);
            }

            if (reply.Reply.AsSpan().SequenceEqual(request))
            {
                return new SoakTrip(relays, request.Length, SoakResult.Success, TunnelErrorKind.None, false, milliseconds);
            }

            log.WriteLine($"soak: trip {index} ({relays} relays, {request.Length} bytes): a reply of {reply.Reply.Length} bytes that differs from the request");
            return new SoakTrip(relays, request.Length, SoakResult.WrongReply, TunnelErrorKind.None, false, milliseconds);
        }
        catch (TimeoutException) when (!trip.IsCompleted)
        {
            // Given up, never waited on again; its eventual failure is observed here so it is not lost.
            _ = trip.ContinueWith(t => log.WriteLine($"soak: trip {index} ended after it was given up: {t.Exception?.GetBaseException().Message ?? "a reply"}"),
                CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            log.WriteLine($"soak: trip {index} ({relays} relays, {request.Length} bytes): HANG, no outcome {(hangAfter + Grace).TotalSeconds} s after the call even though cancelled");
            return new SoakTrip(relays, request.Length, SoakResult.Hang, TunnelErrorKind.None, false, Elapsed());
        }
        catch (Exception exception) when ((bound.IsCancellationRequested || Elapsed() > hangAfter.TotalMilliseconds) && !cancellationToken.IsCancellationRequested)
        {
            // Whatever the call threw once the deadline plus the grace had passed, the trip had not ended in time.
            log.WriteLine($"soak: trip {index} ({relays} relays, {request.Length} bytes): HANG, no outcome by the deadline plus the grace ({exception.GetType().Name})");
            return new SoakTrip(relays, request.Length, SoakResult.Hang, TunnelErrorKind.None, false, Elapsed());
        }
        catch (TunnelException failure)
        {
            return new SoakTrip(relays, request.Length, SoakResult.TypedFailure, failure.Kind, failure.Hop >= 1, Elapsed());
        }
        catch (Exception exception) when (!cancellationToken.IsCancellationRequested)
        {
            log.WriteLine($"soak: trip {index} ({relays} relays, {request.Length} bytes): UNTYPED failure: {exception}");
            return new SoakTrip(relays, request.Length, SoakResult.UntypedFailure, TunnelErrorKind.None, false, Elapsed());
        }
    }

    // Log-uniform in [1, MaxRequestBytes]: as many trips of 1-16 bytes as of 16-256 KiB.
    private static int LogUniformSize(Random random) =>
        Math.Clamp((int)Math.Exp(random.NextDouble() * Math.Log(MaxRequestBytes + 1)), 1, MaxRequestBytes);

    private static int Print(SoakTrip[] outcomes, int kills, TimeSpan elapsed, TextWriter log)
    {
        var successes = new List<double>();
        var failures = new List<double>();
        var byKind = new SortedDictionary<TunnelErrorKind, (int Count, int HopNamed)>();
        int untyped = 0, hangs = 0, wrong = 0, relaysTotal = 0, fullLength = 0, afterDeadline = 0, churnTrips = 0, churnSuccesses = 0, quietSuccesses = 0;
        long bytes = 0;
        foreach (var trip in outcomes)
        {
            relaysTotal += trip.Relays;
            bytes += trip.Bytes;
            switch (trip.Result)
            {
                case SoakResult.Success:
                    successes.Add(trip.Milliseconds);
                    break;
                case SoakResult.TypedFailure:
                    failures.Add(trip.Milliseconds);
                    var (count, named) = byKind.GetValueOrDefault(trip.Kind);
                    byKind[trip.Kind] = (count + 1, named + (trip.HopNamed ? 1 : 0));
                    break;
                case SoakResult.WrongReply:
                    wrong++;
                    break;
                case SoakResult.UntypedFailure:
                    untyped++;
                    break;
                default:
                    hangs++;
                    break;
            }
        }

        foreach (var trip in outcomes)
        {
            fullLength += trip.Relays < MaxRelays ? 0 : 1;
            afterDeadline += trip.Result == SoakResult.TypedFailure && trip.Milliseconds > Deadline.TotalMilliseconds ? 1 : 0;
            churnTrips += trip.DuringChurn ? 1 : 0;
            churnSuccesses += trip.DuringChurn && trip.Result == SoakResult.Success ? 1 : 0;
            quietSuccesses += !trip.DuringChurn && trip.Result == SoakResult.Success ? 1 : 0;
        }

        var inv = CultureInfo.InvariantCulture;
        log.WriteLine();
        log.WriteLine(string.Create(inv, $"soak: {outcomes.Length} round trips in {elapsed.TotalSeconds:F0} s, {kills} nodes killed and replaced; {relaysTotal / (double)outcomes.Length:F1} relays and {bytes / (double)outcomes.Length / 1024:F1} KiB per request on average, {fullLength} trips through 32 relays"));
        log.WriteLine($"  {"outcome",-40} {"trips",6}");
        log.WriteLine($"  {"success (reply = request)",-40} {successes.Count,6}");
        foreach (var (kind, (count, named)) in byKind)
        {
            log.WriteLine($"  {"typed failure: " + kind.ToTag(),-40} {count,6}   hop named in {named}");
        }

        log.WriteLine($"  {"typed failures, all",-40} {failures.Count,6}   {afterDeadline} of them after the {Deadline.TotalSeconds} s deadline (within the grace)");
        log.WriteLine($"  {"wrong reply",-40} {wrong,6}");
        log.WriteLine($"  {"untyped failure",-40} {untyped,6}");
        log.WriteLine($"  {"hang (no outcome in deadline + grace)",-40} {hangs,6}");
        log.WriteLine();
        log.WriteLine($"  started while a killed node was unreplaced or its replacement not yet known to all: {churnTrips} trips, {churnSuccesses} succeeded");
        log.WriteLine($"  started otherwise: {outcomes.Length - churnTrips} trips, {quietSuccesses} succeeded");
        log.WriteLine();
        log.WriteLine("  time from the call to its outcome at the origin (ms):");
        log.WriteLine($"  {"",-20} {"n",6} {"p50",9} {"p99",9} {"max",9}");
        PrintTimes(log, "successes", successes);
        PrintTimes(log, "typed failures", failures);
        var bad = hangs + untyped + wrong;
        log.WriteLine();
        log.WriteLine(bad == 0
            ? $"soak: PASS: no hang, every failure typed at the origin within its {Deadline.TotalSeconds} s deadline + {Grace.TotalSeconds} s grace"
            : $"soak: FAIL: {hangs} hangs, {untyped} untyped failures, {wrong} wrong replies");
        return bad == 0 ? 0 : 1;
    }

    private static void PrintTimes(TextWriter log, string name, List<double> milliseconds)
    {
        var max = 0.0;
        foreach (var value in milliseconds)
        {
            max = Math.Max(max, value);
        }

        log.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  {name,-20} {milliseconds.Count,6} {Measure.Percentile(milliseconds, 50),9:F1} {Measure.Percentile(milliseconds, 99),9:F1} {(milliseconds.Count == 0 ? double.NaN : max),9:F1}"));
    }
}
