using System.Security.Cryptography;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Overlay.Client;
using Overlay.Client.Internal;
using V1 = Overlay.Protocol.Control.V1;

namespace Overlay.Control.Tests;

/// <summary>Overlay.Client against real nodes: what an application using the library sees.</summary>
[Collection(SharedOverlayCollection.Name)]
public sealed class ClientTests(SharedOverlay shared)
{
    private TestOverlay Overlay => shared.Overlay;

    private string B => Overlay.Nodes[1].Id.ToString();

    /// <summary>A client of node <paramref name="node"/> made as an application makes it, through AddOverlayClient.</summary>
    internal static ServiceProvider Services(Uri endpoint, Action<OverlayClientOptions> configure, Action<IHttpClientBuilder>? more = null)
    {
        var services = new ServiceCollection();
        var builder = services.AddOverlayClient(options =>
        {
            options.Endpoint = endpoint;
            configure(options);
        });
        more?.Invoke(builder);
        return services.BuildServiceProvider();
    }

    private ServiceProvider Services(int node, string? token = null, Action<IHttpClientBuilder>? more = null) =>
        Services(Overlay.Nodes[node].Control.Url, options =>
        {
            if (token is null)
            {
                options.TokenFile = Overlay.Nodes[node].Control.TokenFile;
            }
            else
            {
                options.Token = token;
            }
        }, more);

    [Fact]
    public async Task A_tunnel_is_a_duplex_stream()
    {
        using var deadline = TestTimeouts.After(30);
        using var services = Services(0, TestOverlay.ApplicationToken);
        var client = services.GetRequiredService<OverlayClient>();
        var request = RandomNumberGenerator.GetBytes(300_000);

        await using var tunnel = await client.OpenTunnelAsync(OverlayTarget.To(B, relays: 2), deadline.Token);
        Assert.Equal(3, tunnel.Route.Count);
        Assert.Equal(B, tunnel.Route[^1]);
        Assert.Equal(16, tunnel.TunnelId.Length);
        var writing = Task.Run(async () =>
        {
            await tunnel.WriteAsync(request, deadline.Token);
            await tunnel.CompleteWritingAsync(deadline.Token);
        });
        using var reply = new MemoryStream();
        await tunnel.CopyToAsync(reply, deadline.Token);
        await writing;
        Assert.Equal(request, reply.ToArray()); // nobody listens on B: it echoes
        Assert.Equal(request.Length, tunnel.BytesRead);
    }

    [Fact]
    public async Task A_listener_yields_accepted_tunnels_as_streams()
    {
        using var deadline = TestTimeouts.After(30);
        using var services = Services(1, TestOverlay.ApplicationToken);
        var listening = services.GetRequiredService<OverlayClient>();
        using var listener = await listening.ListenAsync(cancellationToken: deadline.Token);
        await OnlyListenerAsync(listening, deadline.Token);
        var serving = Task.Run(async () =>
        {
            await foreach (var incoming in listener.WithCancellation(deadline.Token))
            {
                await using (incoming)
                {
                    using var request = new MemoryStream();
                    await incoming.CopyToAsync(request, deadline.Token);
                    await incoming.WriteAsync("reply to "u8.ToArray(), deadline.Token);
                    await incoming.WriteAsync(request.ToArray(), deadline.Token);
                    await incoming.CompleteWritingAsync(deadline.Token);
                    Assert.Empty(incoming.Route); // the destination never learns the route
                    return incoming.Mode;
                }
            }

            throw new InvalidOperationException("the listener ended without a tunnel");
        });

        using var origin = Services(0);
        var client = origin.GetRequiredService<OverlayClient>();
        await using var tunnel = await client.OpenTunnelAsync(OverlayTarget.To(B, relays: 1), deadline.Token);
        await tunnel.WriteAsync("question"u8.ToArray(), deadline.Token);
        await tunnel.CompleteWritingAsync(deadline.Token);
        using var reply = new MemoryStream();
        await tunnel.CopyToAsync(reply, deadline.Token);
        Assert.Equal("reply to question"u8.ToArray(), reply.ToArray());
        Assert.Equal(V1.TunnelMode.Duplex, await serving);
    }

    [Fact]
    public async Task Failures_are_typed_from_the_status_and_the_trailers()
    {
        using var deadline = TestTimeouts.After(30);
        using var services = Services(0);
        var client = services.GetRequiredService<OverlayClient>();

        var unknown = await Assert.ThrowsAsync<OverlayNotFoundException>(() => client.OpenTunnelAsync(OverlayTarget.To(new string('e', 64), 1), deadline.Token));
        Assert.Equal("unknown_destination", unknown.Reason);

        var invalid = await Assert.ThrowsAsync<OverlayInvalidRequestException>(() => client.SendAsync(OverlayTarget.To(B, 40), "x"u8.ToArray(), deadline.Token));
        Assert.Contains("MaxRelays", invalid.Message, StringComparison.Ordinal);

        var relay = await Assert.ThrowsAsync<OverlayNotFoundException>(() => client.OpenTunnelAsync(new OverlayTarget { Route = [new string('d', 64), B] }, deadline.Token));
        Assert.Equal("unknown_relay", relay.Reason);

        using var app = Services(0, TestOverlay.ApplicationToken);
        var denied = await Assert.ThrowsAsync<OverlayAuthenticationException>(() => app.GetRequiredService<OverlayClient>().RotateKeysAsync(deadline.Token));
        Assert.Equal(StatusCode.PermissionDenied, denied.StatusCode);
        Assert.Equal("not_permitted", denied.Reason);

        using var noFile = Services(Overlay.Nodes[0].Control.Url, o => o.TokenFile = "/nonexistent/control.token");
        var missing = await Assert.ThrowsAsync<OverlayAuthenticationException>(() => noFile.GetRequiredService<OverlayClient>().GetInfoAsync(deadline.Token));
        Assert.Contains("/nonexistent/control.token", missing.Message, StringComparison.Ordinal);

        using var down = Services(new Uri("http://127.0.0.1:1"), o => o.Token = "x");
        await Assert.ThrowsAsync<OverlayUnreachableException>(() => down.GetRequiredService<OverlayClient>().GetInfoAsync(deadline.Token));
    }

    [Fact]
    public async Task A_refused_tunnel_names_the_destination_as_the_failing_hop()
    {
        using var deadline = TestTimeouts.After(30);
        using var services = Services(1);
        var destination = services.GetRequiredService<OverlayClient>();
        using var listener = await destination.ListenAsync(cancellationToken: deadline.Token);
        await OnlyListenerAsync(destination, deadline.Token);
        var refusing = Task.Run(async () =>
        {
            await foreach (var offer in listener.OffersAsync(deadline.Token))
            {
                await destination.RefuseAsync(offer.TunnelId, deadline.Token);
                return;
            }
        });

        using var origin = Services(0);
        var client = origin.GetRequiredService<OverlayClient>();
        var refused = await Assert.ThrowsAsync<OverlayTunnelException>(async () =>
        {
            await using var tunnel = await client.OpenTunnelAsync(OverlayTarget.To(B, relays: 2), deadline.Token);
            await tunnel.WriteAsync("knock"u8.ToArray(), deadline.Token);
            await tunnel.CompleteWritingAsync(deadline.Token);
            await tunnel.CopyToAsync(Stream.Null, deadline.Token);
        });
        await refusing;
        Assert.Equal("destination_refused", refused.Reason);
        Assert.Equal(3, refused.Hop);
    }

    [Fact]
    public async Task Peers_pings_and_events_are_async_streams()
    {
        using var deadline = TestTimeouts.After(30);
        using var services = Services(0);
        var client = services.GetRequiredService<OverlayClient>();

        var peers = new List<V1.PeerChange>();
        await foreach (var change in client.WatchPeersAsync(includeCurrent: true, deadline.Token))
        {
            peers.Add(change);
            if (peers.Count == 4)
            {
                break;
            }
        }

        Assert.All(peers, p => Assert.Equal(V1.PeerStatus.Up, p.Status));

        var events = client.WatchEventsAsync([V1.EventType.TunnelClosed], deadline.Token).GetAsyncEnumerator(deadline.Token);
        var next = events.MoveNextAsync().AsTask();
        await ListenTests.WaitAsync(async () => (await client.GetStatsAsync(deadline.Token)).EventSubscribers >= 1, deadline.Token);

        var attempts = new List<V1.PingAttempt>();
        await foreach (var attempt in client.PingAsync(new V1.PingRequest { Destination = B, Relays = 1, Count = 2 }, deadline.Token))
        {
            attempts.Add(attempt);
        }

        Assert.Equal(2, attempts.Count);
        Assert.All(attempts, a => Assert.True(a.Ok, a.Error?.Message));

        var sent = await client.SendAsync(OverlayTarget.To(B, 1), "one way"u8.ToArray(), deadline.Token);
        Assert.Equal(7ul, sent.BytesSent);
        Assert.True(await next);
        Assert.Equal(V1.EventType.TunnelClosed, events.Current.Type);
        await events.DisposeAsync();
    }

    [Fact]
    public async Task Send_and_open_tunnel_are_never_retried_reads_are()
    {
        using var deadline = TestTimeouts.After(30);
        var counter = new RequestCounter();
        using var services = Services(0, more: builder => builder.AddHttpMessageHandler(() => counter));
        var client = services.GetRequiredService<OverlayClient>();

        // B refuses every tunnel: Unavailable, the status a retry policy would retry.
        using var destination = Services(1);
        var refusing = destination.GetRequiredService<OverlayClient>();
        using var listener = await refusing.ListenAsync(cancellationToken: deadline.Token);
        await OnlyListenerAsync(refusing, deadline.Token);
        var refusals = Task.Run(async () =>
        {
            await foreach (var offer in listener.OffersAsync(deadline.Token))
            {
                await refusing.RefuseAsync(offer.TunnelId, deadline.Token);
            }
        });

        var before = counter.Count;
        var send = await Assert.ThrowsAsync<OverlayTunnelException>(() => client.SendAsync(OverlayTarget.To(B, 1), "once"u8.ToArray(), deadline.Token));
        Assert.Equal(StatusCode.Unavailable, send.StatusCode);
        Assert.Equal(1, counter.Count - before);

        before = counter.Count;
        var open = await Assert.ThrowsAsync<OverlayTunnelException>(async () =>
        {
            await using var tunnel = await client.OpenTunnelAsync(OverlayTarget.To(B, 1), deadline.Token);
            await tunnel.CompleteWritingAsync(deadline.Token);
            await tunnel.CopyToAsync(Stream.Null, deadline.Token);
        });
        Assert.Equal(StatusCode.Unavailable, open.StatusCode);
        Assert.Equal(1, counter.Count - before);
        listener.Dispose();
        await Assert.ThrowsAnyAsync<Exception>(() => refusals); // its listen call ended

        // Only reads that change nothing carry a retry policy; no policy covers a whole service.
        var config = ControlChannel.ServiceConfig();
        var names = config.MethodConfigs.SelectMany(m => m.Names).ToList();
        Assert.All(names, n => Assert.False(string.IsNullOrEmpty(n.Method), "a service-wide retry policy would cover Send and OpenTunnel"));
        Assert.Equal(["GetInfo", "GetStats", "ListPeers", "ListTunnels"], names.Select(n => n.Method).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task The_readme_program_opens_a_tunnel()
    {
        using var deadline = TestTimeouts.After(30);
        var output = new StringWriter();
        var original = Console.Out;
        Console.SetOut(output);
        try
        {
            await ReadmeProgram.RunAsync([Overlay.Nodes[0].Control.Url.ToString(), Overlay.Nodes[0].Control.TokenFile, B]).WaitAsync(deadline.Token);
        }
        finally
        {
            Console.SetOut(original);
        }

        Assert.Equal("hello", output.ToString().Trim());
        ReadmeProgram.AssertTheReadmeShowsIt();
    }

    // Another test's listener leaves asynchronously; until it has, offers alternate between the two.
    private static Task OnlyListenerAsync(OverlayClient node, CancellationToken token) =>
        ListenTests.WaitAsync(async () => (await node.GetInfoAsync(token)).Listeners == 1, token);

    private sealed class RequestCounter : DelegatingHandler
    {
        private int _count;

        public int Count => Volatile.Read(ref _count);

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _count);
            return base.SendAsync(request, cancellationToken);
        }
    }
}
