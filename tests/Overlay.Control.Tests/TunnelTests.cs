using System.Security.Cryptography;
using Google.Protobuf;
using Grpc.Core;
using V1 = Overlay.Protocol.Control.V1;

namespace Overlay.Control.Tests;

[Collection(SharedOverlayCollection.Name)]
public sealed class TunnelTests(SharedOverlay shared)
{
    private TestOverlay Overlay => shared.Overlay;

    private string B => Overlay.Nodes[1].Id.ToString();

    [Fact]
    public async Task Open_tunnel_streams_request_and_reply_through_relays()
    {
        using var client = Overlay.Client(0);
        using var deadline = TestTimeouts.After(30);
        using var call = client.Api.OpenTunnel(cancellationToken: deadline.Token);
        var request = RandomNumberGenerator.GetBytes(300_000);
        await call.RequestStream.WriteAsync(new V1.OpenTunnelRequest { Open = new V1.TunnelTarget { Destination = B, Relays = 2 } });
        Assert.True(await call.ResponseStream.MoveNext(deadline.Token));
        var opened = call.ResponseStream.Current.Opened;
        Assert.Equal(3, opened.Route.Count);
        Assert.Equal(B, opened.Route[^1]);

        var writer = Task.Run(async () =>
        {
            for (var offset = 0; offset < request.Length; offset += 50_000)
            {
                await call.RequestStream.WriteAsync(new V1.OpenTunnelRequest { Data = ByteString.CopyFrom(request, offset, 50_000), End = offset + 50_000 == request.Length });
            }

            await call.RequestStream.CompleteAsync();
        });
        var reply = await ReadReplyAsync(call.ResponseStream, deadline.Token);
        await writer;
        Assert.Equal(request, reply); // nobody listens on B: the node echoes
    }

    [Fact]
    public async Task Open_tunnel_to_a_random_destination_and_list_it_while_open()
    {
        using var client = Overlay.Client(0);
        using var deadline = TestTimeouts.After(30);
        using var call = client.Api.OpenTunnel(cancellationToken: deadline.Token);
        await call.RequestStream.WriteAsync(new V1.OpenTunnelRequest { Open = new V1.TunnelTarget { Relays = 1 }, Data = ByteString.CopyFromUtf8("hello") });
        Assert.True(await call.ResponseStream.MoveNext(deadline.Token));
        var id = call.ResponseStream.Current.Opened.TunnelId;

        var listed = await client.Api.ListTunnelsAsync(new V1.ListTunnelsRequest());
        var info = Assert.Single(listed.Tunnels, t => t.TunnelId == id);
        Assert.Equal(V1.TunnelRole.Origin, info.Role);
        Assert.Equal(1u, info.Relays);
        Assert.Equal("operator", info.Client);

        await call.RequestStream.WriteAsync(new V1.OpenTunnelRequest { End = true });
        await call.RequestStream.CompleteAsync();
        Assert.Equal("hello"u8.ToArray(), await ReadReplyAsync(call.ResponseStream, deadline.Token));
        Assert.DoesNotContain((await client.Api.ListTunnelsAsync(new V1.ListTunnelsRequest())).Tunnels, t => t.TunnelId == id);
    }

    [Fact]
    public async Task Close_tunnel_ends_its_call_with_cancelled_and_others_keep_working()
    {
        using var client = Overlay.Client(0);
        using var deadline = TestTimeouts.After(30);
        using var call = client.Api.OpenTunnel(cancellationToken: deadline.Token);
        await call.RequestStream.WriteAsync(new V1.OpenTunnelRequest { Open = new V1.TunnelTarget { Destination = B, Relays = 1 } });
        Assert.True(await call.ResponseStream.MoveNext(deadline.Token));
        var id = call.ResponseStream.Current.Opened.TunnelId;

        using var app = Overlay.Client(0, token: TestOverlay.ApplicationToken);
        await Rpc.ThrowsAsync(StatusCode.PermissionDenied, async () => await app.Api.CloseTunnelAsync(new V1.CloseTunnelRequest { TunnelId = id }));

        await client.Api.CloseTunnelAsync(new V1.CloseTunnelRequest { TunnelId = id });
        var closed = await Rpc.ThrowsAsync(StatusCode.Cancelled, async () => await call.ResponseStream.MoveNext(deadline.Token));
        Assert.Equal("closed", closed.Reason());

        var trip = await PingOnceAsync(client, B, 1, deadline.Token);
        Assert.True(trip.Ok, trip.Error?.Message);
    }

    [Fact]
    public async Task Unknown_destination_and_malformed_ids_are_refused_before_anything_opens()
    {
        using var client = Overlay.Client(0);
        using var deadline = TestTimeouts.After(30);

        async Task<RpcException> Open(V1.TunnelTarget target, StatusCode code)
        {
            using var call = client.Api.OpenTunnel(cancellationToken: deadline.Token);
            await call.RequestStream.WriteAsync(new V1.OpenTunnelRequest { Open = target });
            return await Rpc.ThrowsAsync(code, async () => await call.ResponseStream.MoveNext(deadline.Token));
        }

        Assert.Equal("unknown_destination", (await Open(new V1.TunnelTarget { Destination = new string('c', 64) }, StatusCode.NotFound)).Reason());
        Assert.Equal("invalid_argument", (await Open(new V1.TunnelTarget { Destination = "12ab" }, StatusCode.InvalidArgument)).Reason());
        Assert.Equal("unknown_relay", (await Open(new V1.TunnelTarget { Route = { new string('d', 64), B } }, StatusCode.NotFound)).Reason());
        await Open(new V1.TunnelTarget { Destination = B, Relays = 99 }, StatusCode.InvalidArgument);
        await Open(new V1.TunnelTarget { Destination = Overlay.Nodes[0].Id.ToString() }, StatusCode.InvalidArgument);

        using var noOpen = client.Api.OpenTunnel(cancellationToken: deadline.Token);
        await noOpen.RequestStream.WriteAsync(new V1.OpenTunnelRequest { Data = ByteString.CopyFromUtf8("x") });
        await Rpc.ThrowsAsync(StatusCode.InvalidArgument, async () => await noOpen.ResponseStream.MoveNext(deadline.Token));
        Assert.Equal(0u, (await client.Api.GetStatsAsync(new V1.GetStatsRequest())).ControlTunnelsOpen);
    }

    [Fact]
    public async Task Explicit_route_is_followed()
    {
        using var client = Overlay.Client(0);
        using var deadline = TestTimeouts.After(30);
        var route = new[] { Overlay.Nodes[3].Id.ToString(), Overlay.Nodes[2].Id.ToString(), B };
        using var call = client.Api.OpenTunnel(cancellationToken: deadline.Token);
        await call.RequestStream.WriteAsync(new V1.OpenTunnelRequest { Open = new V1.TunnelTarget { Route = { route } }, Data = ByteString.CopyFromUtf8("via"), End = true });
        await call.RequestStream.CompleteAsync();
        Assert.True(await call.ResponseStream.MoveNext(deadline.Token));
        Assert.Equal(route, call.ResponseStream.Current.Opened.Route);
        Assert.Equal("via"u8.ToArray(), await ReadReplyAsync(call.ResponseStream, deadline.Token));
    }

    [Fact]
    public async Task Oversized_message_is_resource_exhausted_and_the_node_carries_on()
    {
        using var client = Overlay.Client(0);
        using var deadline = TestTimeouts.After(30);
        using var call = client.Api.OpenTunnel(cancellationToken: deadline.Token);
        await call.RequestStream.WriteAsync(new V1.OpenTunnelRequest { Open = new V1.TunnelTarget { Destination = B, Relays = 0 } });
        Assert.True(await call.ResponseStream.MoveNext(deadline.Token));
        try
        {
            await call.RequestStream.WriteAsync(new V1.OpenTunnelRequest { Data = ByteString.CopyFrom(new byte[2 * 1024 * 1024]) });
        }
        catch (RpcException)
        {
            // The server may end the call before the write completes.
        }

        await Rpc.ThrowsAsync(StatusCode.ResourceExhausted, async () =>
        {
            while (await call.ResponseStream.MoveNext(deadline.Token))
            {
            }
        });
        var trip = await PingOnceAsync(client, B, 1, deadline.Token);
        Assert.True(trip.Ok, trip.Error?.Message);
    }

    [Fact]
    public async Task Too_many_tunnels_for_one_client_is_resource_exhausted()
    {
        using var client = Overlay.Client(0);
        using var deadline = TestTimeouts.After(30);
        var open = new List<AsyncDuplexStreamingCall<V1.OpenTunnelRequest, V1.OpenTunnelResponse>>();
        try
        {
            for (var i = 0; i < 8; i++)
            {
                var call = client.Api.OpenTunnel(cancellationToken: deadline.Token);
                open.Add(call);
                await call.RequestStream.WriteAsync(new V1.OpenTunnelRequest { Open = new V1.TunnelTarget { Destination = B, Relays = 0 } });
                Assert.True(await call.ResponseStream.MoveNext(deadline.Token));
            }

            using var ninth = client.Api.OpenTunnel(cancellationToken: deadline.Token);
            await ninth.RequestStream.WriteAsync(new V1.OpenTunnelRequest { Open = new V1.TunnelTarget { Destination = B, Relays = 0 } });
            var error = await Rpc.ThrowsAsync(StatusCode.ResourceExhausted, async () => await ninth.ResponseStream.MoveNext(deadline.Token));
            Assert.Equal("too_many_tunnels", error.Reason());

            // Another client (the application token) is not affected.
            using var app = Overlay.Client(0, token: TestOverlay.ApplicationToken);
            var trip = await SendAndReadAsync(app, B, "other"u8.ToArray(), deadline.Token);
            Assert.Equal("other"u8.ToArray(), trip);
        }
        finally
        {
            foreach (var call in open)
            {
                call.Dispose();
            }
        }
    }

    [Fact]
    public async Task Call_deadline_bounds_the_tunnel()
    {
        using var client = Overlay.Client(0);
        // The test's own bound, far beyond the call's deadline: if it fires, the deadline did not end the call.
        using var outlived = TestTimeouts.After(30);
        using var call = client.Api.OpenTunnel(deadline: DateTime.UtcNow + TestTimeouts.Seconds(1));
        await call.RequestStream.WriteAsync(new V1.OpenTunnelRequest { Open = new V1.TunnelTarget { Destination = B, Relays = 1 } }, outlived.Token);
        // The request never ends, so the reply never ends: the deadline does. The client's and the
        // server's deadline timers race: the client reports DeadlineExceeded, or Cancelled when the
        // server's reset (from the same deadline) arrives first.
        var ended = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            while (await call.ResponseStream.MoveNext(outlived.Token))
            {
            }
        });
        Assert.False(outlived.IsCancellationRequested, $"the call outlived its deadline by {TestTimeouts.Seconds(30)}");
        Assert.True(ended.StatusCode is StatusCode.DeadlineExceeded or StatusCode.Cancelled, $"expected the deadline to end the call, got {ended.StatusCode}: {ended.Status.Detail}");
    }

    [Fact]
    public async Task One_way_send_returns_once_delivered()
    {
        using var client = Overlay.Client(0);
        using var deadline = TestTimeouts.After(30);
        using var call = client.Api.Send(cancellationToken: deadline.Token);
        await call.RequestStream.WriteAsync(new V1.SendRequest { Target = new V1.TunnelTarget { Relays = 2 }, Data = ByteString.CopyFromUtf8("vote: yes") });
        await call.RequestStream.WriteAsync(new V1.SendRequest { Data = ByteString.CopyFrom(new byte[100_000]) });
        await call.RequestStream.CompleteAsync();
        var result = await call;
        Assert.Equal(100_009ul, result.BytesSent);
        Assert.Equal(3, result.Route.Count);
    }

    [Fact]
    public async Task Ping_reports_time_per_attempt()
    {
        using var client = Overlay.Client(0);
        using var deadline = TestTimeouts.After(30);
        using var call = client.Api.Ping(new V1.PingRequest { Destination = B, Relays = 3, Count = 3, Bytes = 100 }, cancellationToken: deadline.Token);
        var attempts = await call.ResponseStream.ReadAllAsync(deadline.Token).ToListAsync(deadline.Token);
        Assert.Equal([1u, 2u, 3u], attempts.Select(a => a.Attempt));
        Assert.All(attempts, a =>
        {
            Assert.True(a.Ok, a.Error?.Message);
            Assert.Equal(4, a.Route.Count);
            Assert.Equal(100u, a.ReplyBytes);
            Assert.True(a.Time.ToTimeSpan() > TimeSpan.Zero);
        });
    }

    internal static async Task<V1.PingAttempt> PingOnceAsync(ControlClient client, string destination, uint relays, CancellationToken token)
    {
        using var call = client.Api.Ping(new V1.PingRequest { Destination = destination, Relays = relays }, cancellationToken: token);
        Assert.True(await call.ResponseStream.MoveNext(token));
        return call.ResponseStream.Current;
    }

    internal static async Task<byte[]> SendAndReadAsync(ControlClient client, string destination, byte[] request, CancellationToken token, uint relays = 1)
    {
        using var call = client.Api.OpenTunnel(cancellationToken: token);
        await call.RequestStream.WriteAsync(new V1.OpenTunnelRequest { Open = new V1.TunnelTarget { Destination = destination, Relays = relays }, Data = ByteString.CopyFrom(request), End = true });
        await call.RequestStream.CompleteAsync();
        Assert.True(await call.ResponseStream.MoveNext(token));
        Assert.NotNull(call.ResponseStream.Current.Opened);
        return await ReadReplyAsync(call.ResponseStream, token);
    }

    internal static async Task<byte[]> ReadReplyAsync(IAsyncStreamReader<V1.OpenTunnelResponse> replies, CancellationToken token)
    {
        using var reply = new MemoryStream();
        while (await replies.MoveNext(token))
        {
            var message = replies.Current;
            message.Data.WriteTo(reply);
            if (message.End)
            {
                Assert.False(await replies.MoveNext(token));
                return reply.ToArray();
            }
        }

        throw new InvalidOperationException("the reply ended without `end`");
    }
}
