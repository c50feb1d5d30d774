using System.Buffers.Binary;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Overlay.Cli;
using Overlay.Client;
using V1 = Overlay.Protocol.Control.V1;

namespace Overlay.Control.Tests;

/// <summary>
/// Replies over another route through the control API, the client library and the CLI (docs/protocol.md §7.8):
/// a one-way message carries a reply block, the listening application answers over it, and the sender gets the
/// reply over relays none of which carried the message. Spent, expired and unanswered blocks end typed.
/// </summary>
public sealed class ReplyTests
{
    // The block's expiry: after the format version and the first hop's id.
    private const int ExpiryOffset = 1 + 32;

    [Fact]
    public async Task A_message_with_a_reply_block_gets_its_reply_over_a_disjoint_route_and_the_block_is_single_use()
    {
        await using var overlay = await TestOverlay.StartAsync(6);
        using var deadline = TestTimeouts.After(60);
        using var senderServices = ClientTests.Services(overlay.Nodes[0].Control.Url, o => o.Token = TestOverlay.ApplicationToken);
        using var replierServices = ClientTests.Services(overlay.Nodes[1].Control.Url, o => o.Token = TestOverlay.ApplicationToken);
        var sender = senderServices.GetRequiredService<OverlayClient>();
        var replier = replierServices.GetRequiredService<OverlayClient>();
        using var listener = await replier.ListenAsync(cancellationToken: deadline.Token);
        var block = new TaskCompletionSource<byte[]>(TaskCreationOptions.RunContinuationsAsynchronously);
        var answering = Task.Run(async () =>
        {
            await using var offers = listener.GetAsyncEnumerator(deadline.Token);
            Assert.True(await offers.MoveNextAsync());
            await using var tunnel = offers.Current;
            Assert.Equal(V1.TunnelMode.OneWay, tunnel.Mode);
            using var message = new MemoryStream();
            await tunnel.CopyToAsync(message, deadline.Token);
            Assert.Equal("who won?"u8.ToArray(), message.ToArray());
            await tunnel.CompleteWritingAsync(deadline.Token);
            block.SetResult(tunnel.ReplyBlock.ToArray());
            await replier.SendReplyAsync(tunnel.ReplyBlock, "12 to 8"u8.ToArray(), deadline.Token);
        });

        var sending = sender.SendWithReplyAsync(OverlayTarget.To(overlay.Nodes[1].Id.ToString(), relays: 2), "who won?"u8.ToArray(), replyRelays: 2,
            cancellationToken: deadline.Token);
        // The answer's failure, if any, is the one to report: the sender would only wait for the deadline.
        await (await Task.WhenAny(answering, sending));
        await answering.WaitAsync(deadline.Token);
        var result = await sending;

        Assert.Equal("12 to 8"u8.ToArray(), result.Reply.ToByteArray());
        Assert.Equal(overlay.Nodes[0].Id.ToString(), result.ReplyRoute[^1]);
        Assert.Equal(2, result.ReplyRoute.Count - 1);
        Assert.Empty(result.ReplyRoute.Intersect(result.Route));

        var used = await block.Task;
        var spent = await Assert.ThrowsAsync<OverlayTunnelException>(() => replier.SendReplyAsync(used, "again"u8.ToArray(), deadline.Token));
        Assert.Equal(("replayed", 1), (spent.Reason, spent.Hop));
    }

    [Fact]
    public async Task Send_and_listen_in_the_cli_reply_over_another_route_an_unanswered_or_expired_block_ends_typed_and_a_late_reply_is_kept()
    {
        await using var overlay = await TestOverlay.StartAsync(4);
        using var deadline = TestTimeouts.After(60);
        var (origin, destination) = (overlay.Nodes[0], overlay.Nodes[3]);
        using var listenerError = new StringWriter();
        var listenerIO = new CliIO { Input = new MemoryStream(), Output = new MemoryStream(), Error = listenerError };
        var listening = OverlayCli.RunAsync(["--node", destination.Control.Url.ToString(), "--token-file", destination.Control.TokenFile,
            "listen", "--count", "1", "--exec", "tr a-z A-Z"], listenerIO, deadline.Token);
        using var destinationClient = overlay.Client(3);
        await WaitForListenerAsync(destinationClient, deadline.Token);

        using var error = new StringWriter();
        var output = new MemoryStream();
        var io = new CliIO { Input = new MemoryStream("yes"u8.ToArray()), Output = output, Error = error };
        var code = await OverlayCli.RunAsync(["--node", origin.Control.Url.ToString(), "--token-file", origin.Control.TokenFile,
            "send", "--to", destination.Id.ToString(), "--relays", "1", "--reply-via-other-route", "--reply-relays", "1"], io, deadline.Token);

        Assert.True(code == ExitCodes.Ok, error.ToString());
        Assert.Equal("YES"u8.ToArray(), output.ToArray());
        Assert.Contains("came back through 1 other relays", error.ToString(), StringComparison.Ordinal);
        Assert.Equal(ExitCodes.Ok, await listening.WaitAsync(deadline.Token));

        // Nobody answers: the sender's wait ends with no_reply, the message itself delivered (the node echoes).
        using var client = overlay.Client(0);
        using var unanswered = client.Api.Send(cancellationToken: deadline.Token);
        await unanswered.RequestStream.WriteAsync(new V1.SendRequest
        {
            Target = new V1.TunnelTarget { Destination = destination.Id.ToString(), Relays = 1 },
            Reply = new V1.ReplyOverOtherRoute { Relays = 1, Wait = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromSeconds(1)) },
        }, deadline.Token);
        await unanswered.RequestStream.CompleteAsync();
        var noReply = await Assert.ThrowsAsync<RpcException>(() => unanswered.ResponseAsync);
        Assert.Equal((StatusCode.DeadlineExceeded, "no_reply"), (noReply.StatusCode, noReply.Trailers.GetValue("overlay-reason")));
        Assert.NotNull(noReply.Trailers.GetValue("overlay-reply-handle"));

        // A block past its expiry is refused by the replier's node before anything is sent.
        var (captured, handle) = await CaptureBlockAsync(overlay, deadline.Token);
        var expired = captured.ToArray();
        BinaryPrimitives.WriteInt64BigEndian(expired.AsSpan(ExpiryOffset), DateTimeOffset.UtcNow.AddSeconds(-1).ToUnixTimeSeconds());
        var refused = await Assert.ThrowsAsync<RpcException>(() => destinationClient.Api.SendReplyAsync(
            new V1.SendReplyRequest { ReplyBlock = Google.Protobuf.ByteString.CopyFrom(expired), Data = Google.Protobuf.ByteString.CopyFromUtf8("late") },
            cancellationToken: deadline.Token).ResponseAsync);
        Assert.Equal((StatusCode.Unavailable, "expired"), (refused.StatusCode, refused.Trailers.GetValue("overlay-reason")));

        var malformed = await Assert.ThrowsAsync<RpcException>(() => destinationClient.Api.SendReplyAsync(
            new V1.SendReplyRequest { ReplyBlock = Google.Protobuf.ByteString.CopyFrom(expired.AsSpan(1)) }, cancellationToken: deadline.Token).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, malformed.StatusCode);

        // A reply that comes after the sender stopped waiting is kept for AwaitReply, once.
        using var replierServices = ClientTests.Services(destination.Control.Url, o => o.Token = TestOverlay.ApplicationToken);
        await replierServices.GetRequiredService<OverlayClient>().SendReplyAsync(captured, "late but kept"u8.ToArray(), deadline.Token);
        using var senderServices = ClientTests.Services(origin.Control.Url, o => o.Token = TestOverlay.ApplicationToken);
        var sender = senderServices.GetRequiredService<OverlayClient>();
        Assert.Equal("late but kept"u8.ToArray(), (await sender.AwaitReplyAsync(handle, cancellationToken: deadline.Token)).ToArray());
        var collected = await Assert.ThrowsAsync<OverlayNotFoundException>(() => sender.AwaitReplyAsync(handle, cancellationToken: deadline.Token));
        Assert.Equal("unknown_reply_block", collected.Reason);
    }

    // A block as a listener receives it: one message with a reply block to node 3, taken through the control API.
    private static async Task<(byte[] Block, string Handle)> CaptureBlockAsync(TestOverlay overlay, CancellationToken token)
    {
        using var services = ClientTests.Services(overlay.Nodes[3].Control.Url, o => o.Token = TestOverlay.ApplicationToken);
        var client = services.GetRequiredService<OverlayClient>();
        using var listener = await client.ListenAsync(cancellationToken: token);
        using var origin = overlay.Client(0);
        using var send = origin.Api.Send(cancellationToken: token);
        await send.RequestStream.WriteAsync(new V1.SendRequest
        {
            Target = new V1.TunnelTarget { Destination = overlay.Nodes[3].Id.ToString(), Relays = 1 },
            Reply = new V1.ReplyOverOtherRoute { Relays = 1, Wait = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromSeconds(1)) },
        }, token);
        await send.RequestStream.CompleteAsync();
        await using var offers = listener.GetAsyncEnumerator(token);
        Assert.True(await offers.MoveNextAsync());
        await using var tunnel = offers.Current;
        await tunnel.CopyToAsync(Stream.Null, token);
        await tunnel.CompleteWritingAsync(token);
        var failure = await Assert.ThrowsAsync<RpcException>(() => send.ResponseAsync);
        Assert.Equal("no_reply", failure.Trailers.GetValue("overlay-reason"));
        return (tunnel.ReplyBlock.ToArray(), failure.Trailers.GetValue("overlay-reply-handle")!);
    }

    private static async Task WaitForListenerAsync(ControlClient client, CancellationToken token)
    {
        using var poll = new PeriodicTimer(TimeSpan.FromMilliseconds(50));
        while ((await client.Api.GetStatsAsync(new V1.GetStatsRequest(), cancellationToken: token)).Listeners == 0)
        {
            await poll.WaitForNextTickAsync(token);
        }
    }
}
