using System.Diagnostics;
using System.Globalization;
using System.Net;
using Overlay.Errors;
using Overlay.Host.Tests.Infrastructure;
using Overlay.Host.Tunnels;

namespace Overlay.Host.Tests.Hostile;

/// <summary>
/// Admission under a header flood through one previous hop: tunnels through another previous hop
/// still open. The flooder sends headers that cost the node a full X25519 agreement each (a valid
/// version and epoch, a canonical point, random bytes after), from its own loopback address.
/// </summary>
public sealed class FairnessTests(ITestOutputHelper output)
{
    private const int Trips = 200;
    private const int LegitimateConcurrency = 4;
    private const int FloodConcurrency = 10 * LegitimateConcurrency;

    [Fact]
    [Trait("Category", "Heavy")]
    public async Task Tunnels_through_another_previous_hop_succeed_while_one_floods_headers()
    {
        await using var cluster = await TestCluster.StartAsync(2, new ClusterOptions
        {
            NodeDefaultHandler = true,
            Configuration = new Dictionary<string, string?>
            {
                // One header at a time, and no rate limit to hide behind: the turns alone keep it fair.
                ["Overlay:Tunnels:HeaderConcurrency"] = "1",
                ["Overlay:Tunnels:HeadersPerSecondPerPeer"] = "1000000",
                ["Overlay:Tunnels:HeadersPerSecond"] = "1000000",
                ["Overlay:Tunnels:HeaderBurstPerPeer"] = "1000000",
            },
        });
        var origin = cluster[0];
        var target = cluster[1];
        using var deadline = TestTimeouts.After(120);

        var quiet = await MeasureAsync(origin, target, deadline.Token);

        using var stopFlood = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token);
        var flooded = 0L;
        var refusedAsTampered = 0L;
        using var flooder = new RawLinkClient(target.LinkEndpoint, IPAddress.Parse("127.0.0.2"));
        using var sample = HostileWire.HeaderTo(target);
        var flood = Enumerable.Range(0, FloodConcurrency).Select(_ => Task.Run(async () =>
        {
            while (!stopFlood.IsCancellationRequested)
            {
                var header = HostileWire.AgreementHeader(sample.Header);
                try
                {
                    var outcome = await flooder.CallAsync(RawLinkClient.Relay, [RawProtobuf.LinkMessage(header, default)], stopFlood.Token);
                    Interlocked.Increment(ref flooded);
                    if (outcome.OverlayError == (int)TunnelErrorKind.Tampered)
                    {
                        Interlocked.Increment(ref refusedAsTampered);
                    }
                }
                catch (OperationCanceledException) when (stopFlood.IsCancellationRequested)
                {
                    return;
                }
            }
        })).ToList();

        // Let the flood reach the node before measuring.
        await AdmissionTests.WaitUntilAsync(() => Interlocked.Read(ref refusedAsTampered) >= 100, "the flood is being processed", deadline.Token);
        var underFlood = await MeasureAsync(origin, target, deadline.Token);
        await stopFlood.CancelAsync();
        await Task.WhenAll(flood);

        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"quiet: {quiet.Succeeded}/{Trips} ok, p50 {quiet.P50.TotalMilliseconds:F2} ms; under a flood of {flooded} headers " +
            $"({FloodConcurrency} streams at once against {LegitimateConcurrency}): {underFlood.Succeeded}/{Trips} ok, p50 {underFlood.P50.TotalMilliseconds:F2} ms " +
            $"({underFlood.P50 / quiet.P50:F2}x)"));
        Assert.True(underFlood.Succeeded >= Trips * 99 / 100, $"only {underFlood.Succeeded} of {Trips} tunnels succeeded under the flood");
    }

    private static async Task<(int Succeeded, TimeSpan P50)> MeasureAsync(ClusterNode origin, ClusterNode target, CancellationToken cancellationToken)
    {
        var times = new List<TimeSpan>();
        var next = -1;
        await Task.WhenAll(Enumerable.Range(0, LegitimateConcurrency).Select(_ => Task.Run(async () =>
        {
            while (Interlocked.Increment(ref next) < Trips)
            {
                var clock = Stopwatch.StartNew();
                try
                {
                    var trip = await origin.Tunnels.RoundTripAsync(new TunnelRequest { Destination = target.Id, Relays = 0 }, new byte[] { 1 }, cancellationToken: cancellationToken);
                    lock (times)
                    {
                        times.Add(clock.Elapsed);
                    }
                }
                catch (TunnelException)
                {
                    // Counted as a failure below.
                }
            }
        }, cancellationToken)));
        times.Sort();
        return (times.Count, times.Count == 0 ? TimeSpan.MaxValue : times[times.Count / 2]);
    }
}
