using System.Security.Cryptography;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Overlay.Client;
using V1 = Overlay.Protocol.Control.V1;

namespace Overlay.Control.Tests;

/// <summary>The control API's reuse option: streams on one kept route instead of a route per tunnel.</summary>
[Collection(SharedOverlayCollection.Name)]
public sealed class ReuseTests(SharedOverlay shared)
{
    private TestOverlay Overlay => shared.Overlay;

    private string C => Overlay.Nodes[2].Id.ToString();

    [Fact]
    public async Task Ping_with_reuse_sends_every_attempt_on_one_route()
    {
        using var client = Overlay.Client(0);
        using var deadline = TestTimeouts.After(30);
        using var call = client.Api.Ping(new V1.PingRequest { Destination = C, Relays = 1, Count = 4, Reuse = true }, cancellationToken: deadline.Token);
        var attempts = new List<V1.PingAttempt>();
        while (await call.ResponseStream.MoveNext(deadline.Token))
        {
            attempts.Add(call.ResponseStream.Current);
        }

        Assert.Equal(4, attempts.Count);
        Assert.All(attempts, attempt => Assert.True(attempt.Ok, attempt.Error?.ToString()));
        Assert.All(attempts, attempt => Assert.Equal(attempts[0].Route, attempt.Route));
        Assert.Equal(C, attempts[0].Route[^1]);
    }

    [Fact]
    public async Task Tunnels_opened_with_reuse_at_once_share_a_route_and_echo_intact()
    {
        using var client = Overlay.Client(0);
        using var deadline = TestTimeouts.After(30);
        var requests = Enumerable.Range(0, 3).Select(i => RandomNumberGenerator.GetBytes(100_000 + i)).ToArray();
        var calls = requests.Select(_ => client.Api.OpenTunnel(cancellationToken: deadline.Token)).ToArray();
        try
        {
            var routes = new List<IList<string>>();
            foreach (var call in calls)
            {
                await call.RequestStream.WriteAsync(new V1.OpenTunnelRequest { Open = new V1.TunnelTarget { Destination = C, Relays = 2, Reuse = true } });
                Assert.True(await call.ResponseStream.MoveNext(deadline.Token));
                routes.Add(call.ResponseStream.Current.Opened.Route);
            }

            Assert.All(routes, route => Assert.Equal(routes[0], route));
            var replies = calls.Select((call, i) => Task.Run(async () =>
            {
                var writing = Task.Run(async () =>
                {
                    await call.RequestStream.WriteAsync(new V1.OpenTunnelRequest { Data = ByteString.CopyFrom(requests[i]), End = true });
                    await call.RequestStream.CompleteAsync();
                });
                var reply = await TunnelTests.ReadReplyAsync(call.ResponseStream, deadline.Token);
                await writing;
                return reply;
            })).ToArray();
            for (var i = 0; i < requests.Length; i++)
            {
                Assert.Equal(requests[i], await replies[i]);
            }
        }
        finally
        {
            foreach (var call in calls)
            {
                call.Dispose();
            }
        }
    }

    [Fact]
    public async Task Streams_from_the_client_library_reach_a_listening_application_on_one_route()
    {
        using var deadline = TestTimeouts.After(30);
        var d = Overlay.Nodes[3];
        using var destination = ClientTests.Services(d.Control.Url, options => options.Token = TestOverlay.ApplicationToken);
        using var listener = await destination.GetRequiredService<OverlayClient>().ListenAsync(cancellationToken: deadline.Token);
        const int Streams = 3;
        var serving = Task.Run(async () =>
        {
            var served = 0;
            await foreach (var incoming in listener.WithCancellation(deadline.Token))
            {
                await using (incoming)
                {
                    using var request = new MemoryStream();
                    await incoming.CopyToAsync(request, deadline.Token);
                    await incoming.WriteAsync("reply to "u8.ToArray(), deadline.Token);
                    await incoming.WriteAsync(request.ToArray(), deadline.Token);
                    await incoming.CompleteWritingAsync(deadline.Token);
                }

                if (++served == Streams)
                {
                    return;
                }
            }
        });

        using var origin = ClientTests.Services(Overlay.Nodes[0].Control.Url, options => options.Token = TestOverlay.ApplicationToken);
        var client = origin.GetRequiredService<OverlayClient>();
        var routes = new List<IReadOnlyList<string>>();
        for (var i = 0; i < Streams; i++)
        {
            await using var tunnel = await client.OpenTunnelAsync(OverlayTarget.To(d.Id.ToString(), relays: 1) with { Reuse = true }, deadline.Token);
            await tunnel.WriteAsync(System.Text.Encoding.UTF8.GetBytes($"question {i}"), deadline.Token);
            await tunnel.CompleteWritingAsync(deadline.Token);
            using var reply = new MemoryStream();
            await tunnel.CopyToAsync(reply, deadline.Token);
            Assert.Equal($"reply to question {i}", System.Text.Encoding.UTF8.GetString(reply.ToArray()));
            routes.Add(tunnel.Route);
        }

        await serving;
        Assert.All(routes, route => Assert.Equal(routes[0], route));
    }

    [Fact]
    public async Task A_one_way_send_with_reuse_is_an_invalid_argument()
    {
        using var client = Overlay.Client(0);
        using var deadline = TestTimeouts.After(30);
        using var call = client.Api.Send(cancellationToken: deadline.Token);
        await call.RequestStream.WriteAsync(new V1.SendRequest { Target = new V1.TunnelTarget { Destination = C, Relays = 1, Reuse = true }, Data = ByteString.CopyFromUtf8("x") });
        await call.RequestStream.CompleteAsync();
        var refused = await Assert.ThrowsAsync<RpcException>(async () => await call.ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, refused.StatusCode);
    }
}
