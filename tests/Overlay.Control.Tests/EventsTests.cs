using Grpc.Core;
using Grpc.Net.Client;
using V1 = Overlay.Protocol.Control.V1;

namespace Overlay.Control.Tests;

[Collection(SharedOverlayCollection.Name)]
public sealed class EventsTests(SharedOverlay shared)
{
    private TestOverlay Overlay => shared.Overlay;

    private string B => Overlay.Nodes[1].Id.ToString();

    [Fact]
    public async Task Tunnel_events_follow_a_tunnel_and_the_filter_applies()
    {
        using var client = Overlay.Client(0);
        using var deadline = TestTimeouts.After(30);
        using var all = client.Api.WatchEvents(new V1.WatchEventsRequest(), cancellationToken: deadline.Token);
        using var closedOnly = client.Api.WatchEvents(new V1.WatchEventsRequest { EventTypes = { V1.EventType.TunnelClosed } }, cancellationToken: deadline.Token);
        await all.ResponseHeadersAsync;
        await closedOnly.ResponseHeadersAsync;

        await TunnelTests.SendAndReadAsync(client, B, "x"u8.ToArray(), deadline.Token);

        Assert.True(await all.ResponseStream.MoveNext(deadline.Token));
        var opened = all.ResponseStream.Current;
        Assert.Equal(V1.EventType.TunnelOpened, opened.Type);
        Assert.Equal(B, opened.Tunnel.Destination);
        Assert.True(await all.ResponseStream.MoveNext(deadline.Token));
        Assert.Equal(V1.EventType.TunnelClosed, all.ResponseStream.Current.Type);
        Assert.Equal(opened.Tunnel.TunnelId, all.ResponseStream.Current.Tunnel.TunnelId);
        Assert.Equal(1ul, all.ResponseStream.Current.Tunnel.BytesReceived);

        Assert.True(await closedOnly.ResponseStream.MoveNext(deadline.Token));
        Assert.Equal(V1.EventType.TunnelClosed, closedOnly.ResponseStream.Current.Type);
    }

    [Fact]
    public async Task Failed_open_is_reported_as_a_tunnel_failed_event()
    {
        using var client = Overlay.Client(0);
        using var deadline = TestTimeouts.After(30);
        using var events = client.Api.WatchEvents(new V1.WatchEventsRequest { EventTypes = { V1.EventType.TunnelFailed } }, cancellationToken: deadline.Token);
        await events.ResponseHeadersAsync;
        using (var call = client.Api.OpenTunnel(cancellationToken: deadline.Token))
        {
            // More relays than the overlay has peers: no route before the (short) deadline.
            await call.RequestStream.WriteAsync(new V1.OpenTunnelRequest { Open = new V1.TunnelTarget { Destination = B, Relays = 10, Deadline = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromSeconds(1)) } });
            var error = await Rpc.ThrowsAsync(StatusCode.Unavailable, async () => await call.ResponseStream.MoveNext(deadline.Token));
            Assert.Equal("no_route", error.Reason());
            Assert.Equal("0", error.Trailers.GetValue("overlay-hop"));
        }

        Assert.True(await events.ResponseStream.MoveNext(deadline.Token));
        Assert.Equal("no_route", events.ResponseStream.Current.Tunnel.Error.Reason);
    }

    [Fact]
    public async Task Stalled_consumer_is_ended_with_resource_exhausted_while_tunnels_keep_completing()
    {
        using var deadline = TestTimeouts.After(90);
        var url = Overlay.Nodes[0].Control.Url;
        var token = Overlay.OperatorToken(0);

        // The stalled consumer: subscribes, then reads nothing (smallest HTTP/2 window, so little is in flight).
        using var stalledChannel = GrpcChannel.ForAddress(url, new GrpcChannelOptions { HttpHandler = new SocketsHttpHandler { InitialHttp2StreamWindowSize = 65_535 } });
        var stalledClient = new V1.Control.ControlClient(stalledChannel);
        var headers = new Metadata { { "authorization", $"Bearer {token}" } };
        using var stalled = stalledClient.WatchEvents(new V1.WatchEventsRequest(), headers, cancellationToken: deadline.Token);
        await stalled.ResponseHeadersAsync;

        // A healthy consumer alongside it keeps receiving.
        using var client = Overlay.Client(0);
        using var healthy = client.Api.WatchEvents(new V1.WatchEventsRequest { EventTypes = { V1.EventType.TunnelClosed } }, cancellationToken: deadline.Token);
        await healthy.ResponseHeadersAsync;
        var healthyCount = 0;
        var healthyReader = Task.Run(async () =>
        {
            while (await healthy.ResponseStream.MoveNext(deadline.Token))
            {
                Interlocked.Increment(ref healthyCount);
            }
        });

        var dropped = (await client.Api.GetStatsAsync(new V1.GetStatsRequest(), cancellationToken: deadline.Token)).EventConsumersDroppedTotal;
        var tunnels = 0;
        while ((await client.Api.GetStatsAsync(new V1.GetStatsRequest(), cancellationToken: deadline.Token)).EventConsumersDroppedTotal == dropped)
        {
            Assert.True(tunnels < 5000, "the stalled consumer was never ended");
            // Each round trip is one opened and one closed event for every consumer.
            await Task.WhenAll(Enumerable.Range(0, 4).Select(async _ =>
                Assert.Equal("ping"u8.ToArray(), await TunnelTests.SendAndReadAsync(client, B, "ping"u8.ToArray(), deadline.Token, relays: 0))));
            tunnels += 4;
        }

        // Tunnels still complete after the consumer was dropped.
        for (var i = 0; i < 4; i++)
        {
            Assert.Equal("after"u8.ToArray(), await TunnelTests.SendAndReadAsync(client, B, "after"u8.ToArray(), deadline.Token));
        }

        // The stalled consumer reads what was in flight, then the status.
        var error = await Rpc.ThrowsAsync(StatusCode.ResourceExhausted, async () =>
        {
            while (await stalled.ResponseStream.MoveNext(deadline.Token))
            {
            }
        });
        Assert.Equal("events_overflow", error.Reason());
        Assert.Contains("EventsBufferSize", error.Status.Detail, StringComparison.Ordinal);

        await ListenTests.WaitAsync(() => Task.FromResult(Volatile.Read(ref healthyCount) >= tunnels + 4), deadline.Token);
        healthy.Dispose();
        await Assert.ThrowsAnyAsync<Exception>(() => healthyReader);
    }
}
