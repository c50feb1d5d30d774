using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Overlay.Client;
using V1 = Overlay.Protocol.Control.V1;

namespace Overlay.Control.Tests;

/// <summary>A tunnel an application accepts is one of its tunnels: it counts against its MaxTunnelsPerClient.</summary>
public sealed class ListenQuotaTests
{
    [Fact]
    public async Task Accepted_tunnels_count_against_the_listening_applications_quota()
    {
        await using var overlay = await TestOverlay.StartAsync(3, (_, c) => c["Overlay:Control:MaxTunnelsPerClient"] = "1");
        using var deadline = TestTimeouts.After(60);
        var b = overlay.Nodes[1].Id.ToString();
        var c = overlay.Nodes[2].Id.ToString();
        using var application = overlay.Client(1, token: TestOverlay.ApplicationToken);
        using var listen = application.Api.Listen(new V1.ListenRequest(), cancellationToken: deadline.Token);
        await listen.ResponseHeadersAsync;
        using var origin = overlay.Client(0);
        using var anotherOrigin = overlay.Client(2); // each origin's operator has a quota of one as well

        // The first tunnel to B is accepted: the application's one slot.
        using var first = await OpenAsync(origin, b, deadline.Token);
        Assert.True(await listen.ResponseStream.MoveNext(deadline.Token));
        using var accepted = application.Api.Accept(cancellationToken: deadline.Token);
        await accepted.RequestStream.WriteAsync(new V1.AcceptRequest { TunnelId = listen.ResponseStream.Current.Offer.TunnelId });
        Assert.True(await accepted.ResponseStream.MoveNext(deadline.Token));

        // So the application may open none of its own,
        var own = await Rpc.ThrowsAsync(StatusCode.ResourceExhausted, async () => await TunnelTests.PingOnceAsync(application, c, 0, deadline.Token));
        Assert.Equal("too_many_tunnels", own.Reason());

        // nor accept a second one: that one's origin hears the destination refused it.
        using var second = await OpenAsync(anotherOrigin, b, deadline.Token);
        Assert.True(await listen.ResponseStream.MoveNext(deadline.Token));
        using var refused = application.Api.Accept(cancellationToken: deadline.Token);
        await refused.RequestStream.WriteAsync(new V1.AcceptRequest { TunnelId = listen.ResponseStream.Current.Offer.TunnelId });
        var full = await Rpc.ThrowsAsync(StatusCode.ResourceExhausted, async () => await refused.ResponseStream.MoveNext(deadline.Token));
        Assert.Equal("too_many_tunnels", full.Reason());
        Assert.Contains("MaxTunnelsPerClient", full.Status.Detail, StringComparison.Ordinal);
        await second.RequestStream.WriteAsync(new V1.OpenTunnelRequest { End = true });
        var origins = await Rpc.ThrowsAsync(StatusCode.Unavailable, () => TunnelTests.ReadReplyAsync(second.ResponseStream, deadline.Token));
        Assert.Equal("destination_refused", origins.Reason());

        // Once the accepted tunnel ends, its slot is free again.
        await accepted.RequestStream.WriteAsync(new V1.AcceptRequest { End = true });
        await accepted.RequestStream.CompleteAsync();
        await first.RequestStream.WriteAsync(new V1.OpenTunnelRequest { End = true });
        await first.RequestStream.CompleteAsync();
        await TunnelTests.ReadReplyAsync(first.ResponseStream, deadline.Token);
        await ListenTests.WaitAsync(async () => (await application.Api.ListTunnelsAsync(new V1.ListTunnelsRequest())).Tunnels.Count == 0, deadline.Token);
        Assert.True((await TunnelTests.PingOnceAsync(application, c, 0, deadline.Token)).Ok);
    }

    [Fact]
    public async Task A_library_listener_over_its_quota_passes_the_offer_by_and_takes_the_next()
    {
        await using var overlay = await TestOverlay.StartAsync(3, (_, c) => c["Overlay:Control:MaxTunnelsPerClient"] = "1");
        using var deadline = TestTimeouts.After(60);
        var b = overlay.Nodes[1].Id.ToString();
        var c = overlay.Nodes[2].Id.ToString();
        await using var services = ClientTests.Services(overlay.Nodes[1].Control.Url, o => o.Token = TestOverlay.ApplicationToken);
        var application = services.GetRequiredService<OverlayClient>();
        using var listener = await application.ListenAsync(cancellationToken: deadline.Token);
        await using var accepted = listener.GetAsyncEnumerator(deadline.Token);
        var next = accepted.MoveNextAsync().AsTask();

        // The application's one slot is its own tunnel: the offer that arrives now is refused, not fatal.
        var own = await application.OpenTunnelAsync(OverlayTarget.To(c, relays: 0), deadline.Token);
        using var origin = overlay.Client(0);
        var refused = await Rpc.ThrowsAsync(StatusCode.Unavailable, () => TunnelTests.SendAndReadAsync(origin, b, "first"u8.ToArray(), deadline.Token));
        Assert.Equal("destination_refused", refused.Reason());
        Assert.False(next.IsCompleted);

        // Once it ends, the listener takes the next offer.
        await own.CompleteWritingAsync(deadline.Token);
        Assert.Equal(0, await own.ReadAsync(new byte[1], deadline.Token));
        await own.DisposeAsync();
        await ListenTests.WaitAsync(async () => (await application.ListTunnelsAsync(deadline.Token)).Tunnels.Count == 0, deadline.Token);
        var sending = TunnelTests.SendAndReadAsync(origin, b, "second"u8.ToArray(), deadline.Token);
        Assert.True(await next);
        await using (var tunnel = accepted.Current)
        {
            using var request = new MemoryStream();
            await tunnel.CopyToAsync(request, deadline.Token);
            await tunnel.WriteAsync(request.ToArray(), deadline.Token);
            await tunnel.CompleteWritingAsync(deadline.Token);
        }

        Assert.Equal("second"u8.ToArray(), await sending);
    }

    private static async Task<AsyncDuplexStreamingCall<V1.OpenTunnelRequest, V1.OpenTunnelResponse>> OpenAsync(ControlClient origin, string destination, CancellationToken token)
    {
        var call = origin.Api.OpenTunnel(cancellationToken: token);
        await call.RequestStream.WriteAsync(new V1.OpenTunnelRequest { Open = new V1.TunnelTarget { Destination = destination, Relays = 1 }, Data = ByteString.CopyFromUtf8("hello") }, token);
        Assert.True(await call.ResponseStream.MoveNext(token));
        Assert.NotNull(call.ResponseStream.Current.Opened);
        return call;
    }
}
