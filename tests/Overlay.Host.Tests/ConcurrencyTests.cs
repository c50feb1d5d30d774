using System.Diagnostics;
using Overlay.Errors;
using Overlay.Host.Tests.Infrastructure;
using Overlay.Host.Tunnels;
using Overlay.Identity;

namespace Overlay.Host.Tests;

/// <summary>
/// Ten nodes shared by the concurrency tests, with 32 streams per HTTP/2 connection instead of
/// 256: 200 concurrent tunnels then need several connections between the same two nodes, and a
/// hop that left streams half-open would trip Kestrel's limit (about 2 x 32 such streams) early.
/// </summary>
public sealed class TenNodeFixture : IAsyncLifetime
{
    public const int MaxStreamsPerConnection = 32;

    internal TestCluster Cluster { get; private set; } = null!;

    public async Task InitializeAsync() => Cluster = await TestCluster.StartAsync(10, new ClusterOptions
    {
        Configuration = new Dictionary<string, string?> { ["Overlay:Link:MaxStreamsPerConnection"] = MaxStreamsPerConnection.ToString(System.Globalization.CultureInfo.InvariantCulture) },
    });

    public async Task DisposeAsync() => await Cluster.DisposeAsync();
}

/// <summary>Many tunnels at once, and many in a row over the same connections.</summary>
public sealed class ConcurrencyTests(TenNodeFixture fixture, ITestOutputHelper output) : IClassFixture<TenNodeFixture>
{
    private TestCluster Cluster => fixture.Cluster;

    [Fact]
    public async Task Two_hundred_concurrent_tunnels_over_ten_nodes_all_echo_their_bytes()
    {
        const int tunnels = 200;
        var logs = Cluster.Logs.Position;
        using var deadline = TestTimeouts.After(60);
        var clock = Stopwatch.StartNew();
        var trips = Enumerable.Range(0, tunnels).Select(i => Task.Run(async () =>
        {
            var origin = Cluster[i % 10];
            var destination = Cluster[(i + 1 + (i / 10 % 9)) % 10];
            var request = new byte[1024 + (i * 997 % (60 * 1024))];
            new Random(i).NextBytes(request);
            var trip = await origin.Tunnels.RoundTripAsync(new TunnelRequest { Destination = destination.Id, Relays = 3 }, request, cancellationToken: deadline.Token);
            return (Request: request, Trip: trip, Destination: destination.Id);
        })).ToList();
        var results = await Task.WhenAll(trips);
        output.WriteLine($"{tunnels} concurrent tunnels through 3 relays in {clock.Elapsed.TotalSeconds:F2} s");

        foreach (var (request, trip, destination) in results)
        {
            Assert.Equal(request, trip.Reply);
            Assert.Equal(4, trip.Route.Count);
            Assert.Equal(destination, trip.Route[^1]);
        }

        await Cluster.WaitForNoActiveTunnelsAsync(deadline.Token);
        Cluster.Logs.AssertNoUnexpectedWarnings(logs);
    }

    [Fact]
    public async Task Three_thousand_sequential_tunnels_over_the_same_connections_are_never_refused()
    {
        // A hop that left its HTTP/2 stream half-open would have Kestrel answer ENHANCE_YOUR_CALM
        // after about 2 x MaxStreamsPerConnection (here 32) such streams, failing every tunnel on
        // the connection (a known Kestrel behaviour, measured at about 2,200 sequential tunnels before the relay returned only after both directions ended). An explicit route is never retried, so any refusal fails here.
        const int tunnels = 3000;
        var logs = Cluster.Logs.Position;
        using var deadline = TestTimeouts.After(120);
        var origin = Cluster[0];
        NodeId[] route = [Cluster[1].Id, Cluster[2].Id, Cluster[3].Id, Cluster[4].Id];
        var request = new byte[64];
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < tunnels; i++)
        {
            Random.Shared.NextBytes(request);
            RoundTrip trip;
            try
            {
                trip = await origin.Tunnels.RoundTripAsync(new TunnelRequest { Route = route }, request, cancellationToken: deadline.Token);
            }
            catch (TunnelException failure)
            {
                Assert.Fail($"tunnel {i + 1} of {tunnels} failed at hop {failure.Hop}: {failure.Kind.ToTag()} ({failure.Message})");
                throw;
            }

            Assert.Equal(request, trip.Reply);
        }

        output.WriteLine($"{tunnels} sequential tunnels through 3 relays in {clock.Elapsed.TotalSeconds:F2} s ({clock.Elapsed.TotalMilliseconds / tunnels:F2} ms each)");
        await Cluster.WaitForNoActiveTunnelsAsync(deadline.Token);
        Cluster.Logs.AssertNoUnexpectedWarnings(logs);
    }
}
