using System.Diagnostics;
using Overlay.Host.Tests.Infrastructure;
using Overlay.Host.Tunnels;

namespace Overlay.Host.Tests;

/// <summary>One 34-node overlay for every ping: 32 relays need the origin, 32 relays and the destination.</summary>
public sealed class LargeClusterFixture : IAsyncLifetime
{
    internal TestCluster Cluster { get; private set; } = null!;

    public async Task InitializeAsync() =>
        // Slower gossip than small clusters, and none once formed: every exchange is a fresh TLS
        // connection, and 34 nodes gossiping would take the 2 cores from pings that need none of it.
        Cluster = await TestCluster.StartAsync(34, new ClusterOptions { GossipInterval = TimeSpan.FromMilliseconds(500), PauseGossipOnceFormed = true }, formSeconds: 60);

    public async Task DisposeAsync() => await Cluster.DisposeAsync();
}

/// <summary>Guarantee 1 (docs/protocol.md) and the basic promise: bytes go out through R relays and come back unchanged.</summary>
public sealed class PingTests(LargeClusterFixture fixture, ITestOutputHelper output) : IClassFixture<LargeClusterFixture>
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(6)]
    [InlineData(18)]
    [InlineData(32)]
    public async Task Ping_pong_through_relays_returns_the_same_bytes(int relays)
    {
        var cluster = fixture.Cluster;
        var origin = cluster[relays % cluster.Nodes.Count];
        var destination = cluster[(relays + 17) % cluster.Nodes.Count];
        var logs = cluster.Logs.Position;
        using var deadline = TestTimeouts.After(30);

        foreach (var size in new[] { 64, 100_000 })
        {
            var request = new byte[size];
            Random.Shared.NextBytes(request);
            var clock = Stopwatch.StartNew();
            var trip = await origin.Tunnels.RoundTripAsync(new TunnelRequest { Destination = destination.Id, Relays = relays }, request, cancellationToken: deadline.Token);
            output.WriteLine($"{relays} relays, {size} bytes: {clock.Elapsed.TotalMilliseconds:F1} ms");

            Assert.Equal(request, trip.Reply);
            Assert.Equal(relays + 1, trip.Route.Count);
            Assert.Equal(destination.Id, trip.Route[^1]);
            Assert.DoesNotContain(origin.Id, trip.Route);
            Assert.Equal(trip.Route.Count, trip.Route.Distinct().Count());
        }

        await cluster.WaitForNoActiveTunnelsAsync(deadline.Token);
        cluster.Logs.AssertNoUnexpectedWarnings(logs);
    }
}
