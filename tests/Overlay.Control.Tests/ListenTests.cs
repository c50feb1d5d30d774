using System.Security.Cryptography;
using Google.Protobuf;
using Grpc.Core;
using V1 = Overlay.Protocol.Control.V1;

namespace Overlay.Control.Tests;

[Collection(SharedOverlayCollection.Name)]
public sealed class ListenTests(SharedOverlay shared)
{
    private TestOverlay Overlay => shared.Overlay;

    private string B => Overlay.Nodes[1].Id.ToString();

    /// <summary>An application on B: takes every offer and answers with <paramref name="reply"/> of the request.</summary>
    private static async Task ServeAsync(ControlClient client, AsyncServerStreamingCall<V1.ListenResponse> listen, Func<byte[], byte[]> reply, int tunnels, CancellationToken token)
    {
        var served = new List<Task>();
        for (var i = 0; i < tunnels && await listen.ResponseStream.MoveNext(token); i++)
        {
            var offer = listen.ResponseStream.Current.Offer;
            served.Add(Task.Run(async () =>
            {
                using var accept = client.Api.Accept(cancellationToken: token);
                await accept.RequestStream.WriteAsync(new V1.AcceptRequest { TunnelId = offer.TunnelId });
                using var request = new MemoryStream();
                while (await accept.ResponseStream.MoveNext(token))
                {
                    accept.ResponseStream.Current.Data.WriteTo(request);
                    if (accept.ResponseStream.Current.End)
                    {
                        break;
                    }
                }

                var answer = reply(request.ToArray());
                for (var offset = 0; offset < answer.Length; offset += 256 * 1024)
                {
                    await accept.RequestStream.WriteAsync(new V1.AcceptRequest { Data = ByteString.CopyFrom(answer, offset, Math.Min(256 * 1024, answer.Length - offset)) });
                }

                await accept.RequestStream.WriteAsync(new V1.AcceptRequest { End = true });
                await accept.RequestStream.CompleteAsync();
                Assert.False(await accept.ResponseStream.MoveNext(token));
            }, token));
        }

        await Task.WhenAll(served);
    }

    [Fact]
    public async Task Application_on_A_gets_the_reply_of_an_application_listening_on_B()
    {
        using var deadline = TestTimeouts.After(30);
        using var listener = Overlay.Client(1, token: TestOverlay.ApplicationToken);
        using var listen = listener.Api.Listen(new V1.ListenRequest(), cancellationToken: deadline.Token);
        await listen.ResponseHeadersAsync;
        var serving = ServeAsync(listener, listen, request => [.. "reply to "u8, .. request], 1, deadline.Token);

        using var origin = Overlay.Client(0, token: TestOverlay.ApplicationToken);
        var reply = await TunnelTests.SendAndReadAsync(origin, B, "question"u8.ToArray(), deadline.Token, relays: 2);
        await serving;
        Assert.Equal("reply to question"u8.ToArray(), reply);
    }

    [Fact]
    public async Task A_16_MiB_reply_streams_back_to_the_origin()
    {
        using var deadline = TestTimeouts.After(60);
        using var listener = Overlay.Client(1);
        using var listen = listener.Api.Listen(new V1.ListenRequest(), cancellationToken: deadline.Token);
        await listen.ResponseHeadersAsync;
        var big = RandomNumberGenerator.GetBytes(16 * 1024 * 1024);
        var serving = ServeAsync(listener, listen, _ => big, 1, deadline.Token);

        using var origin = Overlay.Client(0);
        using var call = origin.Api.OpenTunnel(cancellationToken: deadline.Token);
        await call.RequestStream.WriteAsync(new V1.OpenTunnelRequest { Open = new V1.TunnelTarget { Destination = B, Relays = 2 }, Data = ByteString.CopyFromUtf8("send it"), End = true });
        await call.RequestStream.CompleteAsync();
        Assert.True(await call.ResponseStream.MoveNext(deadline.Token));
        var messages = 0;
        using var reply = new MemoryStream();
        while (await call.ResponseStream.MoveNext(deadline.Token) && !call.ResponseStream.Current.End)
        {
            call.ResponseStream.Current.Data.WriteTo(reply);
            messages++;
        }

        await serving;
        Assert.Equal(big.Length, reply.Length);
        Assert.True(big.AsSpan().SequenceEqual(reply.GetBuffer().AsSpan(0, (int)reply.Length)));
        Assert.True(messages > 100, $"the reply came in {messages} messages: it should stream, not arrive whole");
    }

    [Fact]
    public async Task Refused_offer_reaches_the_origin_as_destination_refused()
    {
        using var deadline = TestTimeouts.After(30);
        using var listener = Overlay.Client(1);
        using var listen = listener.Api.Listen(new V1.ListenRequest(), cancellationToken: deadline.Token);
        await listen.ResponseHeadersAsync;
        var refusing = Task.Run(async () =>
        {
            Assert.True(await listen.ResponseStream.MoveNext(deadline.Token));
            using var accept = listener.Api.Accept(cancellationToken: deadline.Token);
            await accept.RequestStream.WriteAsync(new V1.AcceptRequest { TunnelId = listen.ResponseStream.Current.Offer.TunnelId, Refuse = true });
            await accept.RequestStream.CompleteAsync();
            Assert.False(await accept.ResponseStream.MoveNext(deadline.Token));
        });

        using var origin = Overlay.Client(0);
        using var ping = origin.Api.Ping(new V1.PingRequest { Destination = B, Relays = 1 }, cancellationToken: deadline.Token);
        Assert.True(await ping.ResponseStream.MoveNext(deadline.Token));
        await refusing;
        var attempt = ping.ResponseStream.Current;
        Assert.False(attempt.Ok);
        Assert.Equal("destination_refused", attempt.Error.Reason);
        Assert.Equal(2u, attempt.Error.Hop);
    }

    [Fact]
    public async Task Accept_of_an_unknown_or_foreign_offer_is_refused()
    {
        using var deadline = TestTimeouts.After(30);
        using var client = Overlay.Client(1);
        using var accept = client.Api.Accept(cancellationToken: deadline.Token);
        await accept.RequestStream.WriteAsync(new V1.AcceptRequest { TunnelId = "00000000000000ff" });
        Assert.Equal("unknown_tunnel", (await Rpc.ThrowsAsync(StatusCode.NotFound, async () => await accept.ResponseStream.MoveNext(deadline.Token))).Reason());

        using var operatorListener = Overlay.Client(1);
        using var listen = operatorListener.Api.Listen(new V1.ListenRequest(), cancellationToken: deadline.Token);
        await listen.ResponseHeadersAsync;
        using var origin = Overlay.Client(0);
        var ping = Task.Run(async () => await TunnelTests.PingOnceAsync(origin, B, 0, deadline.Token));
        Assert.True(await listen.ResponseStream.MoveNext(deadline.Token));
        var offer = listen.ResponseStream.Current.Offer;

        using var app = Overlay.Client(1, token: TestOverlay.ApplicationToken);
        using var foreign = app.Api.Accept(cancellationToken: deadline.Token);
        await foreign.RequestStream.WriteAsync(new V1.AcceptRequest { TunnelId = offer.TunnelId });
        await Rpc.ThrowsAsync(StatusCode.PermissionDenied, async () => await foreign.ResponseStream.MoveNext(deadline.Token));

        listen.Dispose(); // the listener leaves: its offers are refused at once
        var attempt = await ping;
        Assert.Equal("destination_refused", attempt.Error?.Reason);
    }

    [Fact]
    public async Task Without_a_listener_the_node_echoes_again()
    {
        using var deadline = TestTimeouts.After(30);
        using (var listener = Overlay.Client(1))
        {
            using var listen = listener.Api.Listen(new V1.ListenRequest(), cancellationToken: deadline.Token);
            await listen.ResponseHeadersAsync;
        }

        using var origin = Overlay.Client(0);
        using var stats = Overlay.Client(1);
        await WaitAsync(async () => (await stats.Api.GetInfoAsync(new V1.GetInfoRequest())).Listeners == 0, deadline.Token);
        Assert.Equal("echo"u8.ToArray(), await TunnelTests.SendAndReadAsync(origin, B, "echo"u8.ToArray(), deadline.Token));
    }

    [Fact]
    public async Task One_way_sends_arrive_at_the_listener()
    {
        using var deadline = TestTimeouts.After(30);
        using var listener = Overlay.Client(1);
        using var listen = listener.Api.Listen(new V1.ListenRequest(), cancellationToken: deadline.Token);
        await listen.ResponseHeadersAsync;
        var received = Task.Run(async () =>
        {
            Assert.True(await listen.ResponseStream.MoveNext(deadline.Token));
            Assert.Equal(V1.TunnelMode.OneWay, listen.ResponseStream.Current.Offer.Mode);
            using var accept = listener.Api.Accept(cancellationToken: deadline.Token);
            await accept.RequestStream.WriteAsync(new V1.AcceptRequest { TunnelId = listen.ResponseStream.Current.Offer.TunnelId });
            await accept.RequestStream.CompleteAsync();
            using var data = new MemoryStream();
            while (await accept.ResponseStream.MoveNext(deadline.Token))
            {
                accept.ResponseStream.Current.Data.WriteTo(data);
            }

            return data.ToArray();
        });

        using var origin = Overlay.Client(0);
        using var send = origin.Api.Send(cancellationToken: deadline.Token);
        await send.RequestStream.WriteAsync(new V1.SendRequest { Target = new V1.TunnelTarget { Destination = B, Relays = 1 }, Data = ByteString.CopyFromUtf8("ballot") });
        await send.RequestStream.CompleteAsync();
        await send;
        Assert.Equal("ballot"u8.ToArray(), await received);
    }

    internal static async Task WaitAsync(Func<Task<bool>> condition, CancellationToken token)
    {
        while (!await condition())
        {
            await Task.Delay(20, token);
        }
    }
}
