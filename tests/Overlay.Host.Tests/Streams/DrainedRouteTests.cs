using Overlay.Host.Tunnels;

namespace Overlay.Host.Tests.Streams;

/// <summary>A kept route does not hold a node's drain up for its idle timeout.</summary>
public sealed class DrainedRouteTests
{
    [Fact]
    public async Task An_idle_kept_route_closes_when_its_origin_begins_to_drain()
    {
        // Idle routes would stay for ten minutes: only the drain can close this one within the test's deadline.
        await using var cluster = await TestCluster.StartAsync(3, new ClusterOptions
        {
            Configuration = new Dictionary<string, string?> { ["Overlay:Tunnels:Streams:RouteIdleTimeout"] = "00:10:00" },
        });
        using var deadline = TestTimeouts.After(30);
        var origin = cluster[0];
        var trip = await origin.Tunnels.RoundTripAsync(new TunnelRequest { Route = [cluster[1].Id, cluster[2].Id], Reuse = true }, new byte[64], cancellationToken: deadline.Token);
        Assert.Equal(64, trip.Reply.Length);
        // The route stays open, idle, until the drain begins.
        Assert.Equal(1, origin.Registry.Originated);

        origin.Registry.BeginDrain();
        await cluster.WaitForNoActiveTunnelsAsync(deadline.Token);
        Assert.Equal(0, origin.Tunnels.Routes.Count);
    }
}
