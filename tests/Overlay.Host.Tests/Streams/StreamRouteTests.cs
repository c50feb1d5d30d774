using Overlay.Errors;
using Overlay.Host.Telemetry;
using Overlay.Host.Tests.Infrastructure;
using Overlay.Host.Tunnels;
using Overlay.Identity;

namespace Overlay.Host.Tests.Streams;

/// <summary>Reusable routes (docs/protocol.md section 7.9): many streams on one tunnel, each with its own end, reset and flow control.</summary>
public sealed class StreamRouteTests(StreamRouteFixture fixture, ITestOutputHelper output) : IClassFixture<StreamRouteFixture>
{
    private TestCluster Cluster => fixture.Cluster;

    [Fact]
    public async Task Many_interleaved_streams_share_one_route_bytes_intact_and_each_relay_sees_one_header()
    {
        var logs = Cluster.Logs.Position;
        using var deadline = TestTimeouts.After(60);
        IReadOnlyList<NodeId> route = [Cluster[1].Id, Cluster[2].Id, Cluster[3].Id, Cluster[4].Id];
        var relays = route.Take(3).Select(id => new NodeCounter(id, "overlay.tunnels.opened", OverlayTelemetry.RoleTag)).ToList();
        try
        {
            // Sizes from one byte to several windows (64 KiB credit per stream), so credit flows back mid-stream.
            var sizes = Enumerable.Range(0, 24).Select(i => i % 4 == 0 ? 300_000 + i : 1 + i * 977).ToArray();
            var trips = sizes.Select(async (size, i) =>
            {
                var request = new byte[size];
                new Random(i).NextBytes(request);
                var trip = await Cluster[0].Tunnels.RoundTripAsync(new TunnelRequest { Route = route, Reuse = true }, request, cancellationToken: deadline.Token);
                Assert.Equal(request, trip.Reply);
                Assert.Equal(route, trip.Route);
            });
            await Task.WhenAll(trips);
            output.WriteLine($"{sizes.Length} concurrent streams, {sizes.Sum():N0} bytes each way, on one route");

            // Later streams, one after another, ride the same route while it is open.
            for (var i = 0; i < 5; i++)
            {
                var trip = await Cluster[0].Tunnels.RoundTripAsync(new TunnelRequest { Route = route, Reuse = true }, new byte[64], cancellationToken: deadline.Token);
                Assert.Equal(64, trip.Reply.Length);
            }

            foreach (var counter in relays)
            {
                Assert.Equal(1, counter.Count(TunnelRoles.Relay));
            }

            // Idle, the route closes at every hop.
            await Cluster.WaitForNoActiveTunnelsAsync(deadline.Token);
            Assert.Equal(0, Cluster[0].Tunnels.Routes.Count);
            Cluster.Logs.AssertNoUnexpectedWarnings(logs);
        }
        finally
        {
            relays.ForEach(counter => counter.Dispose());
        }
    }

    [Fact]
    public async Task A_reset_stream_leaves_its_siblings_and_the_route_open()
    {
        var logs = Cluster.Logs.Position;
        using var deadline = TestTimeouts.After(60);
        IReadOnlyList<NodeId> route = [Cluster[3].Id, Cluster[4].Id];
        using var relay = new NodeCounter(route[0], "overlay.tunnels.opened", OverlayTelemetry.RoleTag);
        var request = new TunnelRequest { Route = route, Reuse = true };
        var stall = Cluster.Handler.RegisterStall();
        try
        {
            await using var held = await Cluster[0].Tunnels.OpenAsync(request with { InitialData = stall.Tag }, deadline.Token);
            await stall.Reached.WaitAsync(deadline.Token);

            // The origin resets one stream: it alone ends, as cancelled.
            await held.AbortAsync();
            var reset = await Assert.ThrowsAsync<TunnelException>(async () => await held.ReadAsync(new byte[16], deadline.Token));
            Assert.Equal(TunnelErrorKind.Cancelled, reset.Kind);

            // The destination refuses one stream (a service it does not host): typed, and it alone ends.
            var refused = await Assert.ThrowsAsync<TunnelException>(() =>
                Cluster[0].Tunnels.RoundTripAsync(request with { Service = "not-hosted" }, new byte[10], cancellationToken: deadline.Token));
            Assert.Equal(TunnelErrorKind.DestinationRefused, refused.Kind);
            Assert.Equal(2, refused.Hop);

            var trip = await Cluster[0].Tunnels.RoundTripAsync(request, new byte[20_000], cancellationToken: deadline.Token);
            Assert.Equal(20_000, trip.Reply.Length);
            Assert.Equal(1, relay.Count(TunnelRoles.Relay));
        }
        finally
        {
            stall.Release();
        }

        await Cluster.WaitForNoActiveTunnelsAsync(deadline.Token);
        Cluster.Logs.AssertNoUnexpectedWarnings(logs);
    }

    [Fact]
    public async Task A_stream_past_its_deadline_is_reset_alone()
    {
        var logs = Cluster.Logs.Position;
        using var deadline = TestTimeouts.After(60);
        IReadOnlyList<NodeId> route = [Cluster[1].Id, Cluster[3].Id];
        using var relay = new NodeCounter(route[0], "overlay.tunnels.opened", OverlayTelemetry.RoleTag);
        var request = new TunnelRequest { Route = route, Reuse = true };
        var stall = Cluster.Handler.RegisterStall();
        try
        {
            // The shortest deadline class (5 s): the stalled stream passes it, its sibling does not.
            await using var late = await Cluster[0].Tunnels.OpenAsync(request with { InitialData = stall.Tag, Deadline = TimeSpan.FromSeconds(5) }, deadline.Token);
            await stall.Reached.WaitAsync(deadline.Token);
            var reading = late.ReadAsync(new byte[64], deadline.Token).AsTask();
            var sibling = await Cluster[0].Tunnels.RoundTripAsync(request, new byte[1000], cancellationToken: deadline.Token);
            Assert.Equal(1000, sibling.Reply.Length);

            var expired = await Assert.ThrowsAsync<TunnelException>(() => reading);
            Assert.Equal(TunnelErrorKind.DeadlineExceeded, expired.Kind);

            var after = await Cluster[0].Tunnels.RoundTripAsync(request, new byte[10], cancellationToken: deadline.Token);
            Assert.Equal(10, after.Reply.Length);
            Assert.Equal(1, relay.Count(TunnelRoles.Relay));
        }
        finally
        {
            stall.Release();
        }

        await Cluster.WaitForNoActiveTunnelsAsync(deadline.Token);
        Cluster.Logs.AssertNoUnexpectedWarnings(logs);
    }

    [Fact]
    public async Task A_destination_refuses_streams_beyond_its_limits_with_a_typed_reason()
    {
        var logs = Cluster.Logs.Position;
        using var deadline = TestTimeouts.After(60);
        var request = new TunnelRequest { Route = [Cluster[2].Id, Cluster[StreamRouteFixture.StrictDestination].Id], Reuse = true };
        var stall = Cluster.Handler.RegisterStall();
        try
        {
            // Stream 1 stays open; stream 2 is one too many at once for this destination.
            await using var held = await Cluster[0].Tunnels.OpenAsync(request with { InitialData = stall.Tag }, deadline.Token);
            await stall.Reached.WaitAsync(deadline.Token);
            var concurrent = await Assert.ThrowsAsync<TunnelException>(() =>
                Cluster[0].Tunnels.RoundTripAsync(request, new byte[10], cancellationToken: deadline.Token));
            Assert.Equal(TunnelErrorKind.LimitExceeded, concurrent.Kind);
            Assert.Equal(2, concurrent.Hop);

            stall.Release();
            await held.CompleteAsync(deadline.Token);
            var echoed = new byte[64];
            var read = 0;
            while (await held.ReadAsync(echoed.AsMemory(read), deadline.Token) is var n && n > 0)
            {
                read += n;
            }

            Assert.Equal(stall.Tag.Length, read);

            // Stream 3 is the last this destination takes on one route; stream 4 is refused.
            var third = await Cluster[0].Tunnels.RoundTripAsync(request, new byte[10], cancellationToken: deadline.Token);
            Assert.Equal(10, third.Reply.Length);
            var fourth = await Assert.ThrowsAsync<TunnelException>(() =>
                Cluster[0].Tunnels.RoundTripAsync(request, new byte[10], cancellationToken: deadline.Token));
            Assert.Equal(TunnelErrorKind.LimitExceeded, fourth.Kind);
        }
        finally
        {
            stall.Release();
        }

        await Cluster.WaitForNoActiveTunnelsAsync(deadline.Token);
        Cluster.Logs.AssertNoUnexpectedWarnings(logs);
    }

    [Fact]
    public async Task One_way_tunnels_cannot_share_a_route()
    {
        using var deadline = TestTimeouts.After(30);
        await Assert.ThrowsAsync<ArgumentException>(() =>
            Cluster[0].Tunnels.OpenAsync(new TunnelRequest { Destination = Cluster[4].Id, Relays = 1, Reuse = true, Mode = Onion.TunnelMode.OneWay }, deadline.Token));
    }
}
