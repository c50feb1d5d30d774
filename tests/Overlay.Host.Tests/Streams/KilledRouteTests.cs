using Overlay.Errors;
using Overlay.Host.Tunnels;

namespace Overlay.Host.Tests.Streams;

/// <summary>A failed hop ends every stream of its route with the usual typed error; the next stream builds a new route.</summary>
public sealed class KilledRouteTests(ITestOutputHelper output)
{
    // A failing hop's neighbours report the tunnel they lost (201 relay, 202 destination).
    private static bool TunnelReport(LogEntry entry) => entry.EventId.Id is 201 or 202;

    [Fact]
    public async Task A_killed_relay_ends_every_stream_on_its_route_and_the_next_stream_builds_a_new_route()
    {
        await using var cluster = await TestCluster.StartAsync(4);
        var logs = cluster.Logs.Position;
        using var deadline = TestTimeouts.After(60);
        var request = new TunnelRequest { Destination = cluster[3].Id, Relays = 1, Reuse = true, Deadline = TimeSpan.FromMinutes(1) };
        var stall = cluster.Handler.RegisterStall();
        var streams = new List<OverlayTunnel>();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                streams.Add(await cluster[0].Tunnels.OpenAsync(request with { InitialData = stall.Tag }, deadline.Token));
            }

            await stall.Reached.WaitAsync(deadline.Token);
            var route = streams[0].Route;
            Assert.All(streams, stream => Assert.Equal(route, stream.Route));

            var relay = cluster.Nodes.Single(n => n.Id == route[0]).Index;
            await cluster.KillAsync(relay);
            foreach (var stream in streams)
            {
                var failure = await Assert.ThrowsAsync<TunnelException>(async () => await stream.ReadAsync(new byte[64], deadline.Token));
                output.WriteLine($"stream: {failure.Kind.ToTag()} at hop {failure.Hop}");
                Assert.Equal(1, failure.Hop);
                Assert.Contains(failure.Kind, new[] { TunnelErrorKind.LinkLost, TunnelErrorKind.NextHopUnreachable });
            }

            var next = await cluster[0].Tunnels.RoundTripAsync(request, new byte[64], cancellationToken: deadline.Token);
            Assert.Equal(64, next.Reply.Length);
            Assert.DoesNotContain(route[0], next.Route);
        }
        finally
        {
            stall.Release();
            foreach (var stream in streams)
            {
                await stream.DisposeAsync();
            }
        }

        cluster.Logs.AssertNoUnexpectedWarnings(logs, TunnelReport);
    }
}
