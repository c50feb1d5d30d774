using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Overlay.Errors;
using Overlay.Host.Replies;
using Overlay.Host.Tunnels;
using Overlay.Identity;
using Overlay.Replies;
using V1 = Overlay.Protocol.Control.V1;

namespace Overlay.Host.Control;

/// <summary>
/// Replies over another route (docs/protocol.md §7.8): a <c>Send</c> that attaches a reply block and waits for
/// the reply, and <c>SendReply</c>, which answers over a block received with a message or by other means.
/// </summary>
internal sealed partial class ControlService
{
    private const string ReplyHandleTrailer = "overlay-reply-handle";

    public override async Task<V1.SendReplyResponse> SendReply(V1.SendReplyRequest request, ServerCallContext context)
    {
        var started = time.GetTimestamp();
        var kind = ReplyBlock.TryParse(request.ReplyBlock.Span, node.Network, time.GetUtcNow(), out var parsed);
        if (kind == TunnelErrorKind.Expired)
        {
            throw ControlErrors.FromTunnel(new TunnelException(kind, 0, "the reply block has expired"));
        }

        if (parsed is null)
        {
            throw ControlErrors.InvalidArgument($"reply_block is not a reply block of this network ({ReplyBlock.SizeFor(node.Network)} bytes, format version {ReplyBlock.FormatVersion})");
        }

        using var block = parsed;
        try
        {
            var sent = await tunnelClient.SendReplyAsync(block, request.Data.Memory, replies.MaxReplyBytes, context.CancellationToken);
            return new V1.SendReplyResponse { BytesSent = (ulong)sent.Bytes, Elapsed = Duration.FromTimeSpan(time.GetElapsedTime(started)) };
        }
        catch (TunnelException failure)
        {
            ControlLog.TunnelFailed(logger, "reply", failure.Kind.ToTag(), failure);
            throw ControlErrors.FromTunnel(failure);
        }
    }

    public override async Task<V1.AwaitReplyResponse> AwaitReply(V1.AwaitReplyRequest request, ServerCallContext context)
    {
        if (!ReplySecretFiles.IsHandle(request.ReplyHandle))
        {
            throw ControlErrors.InvalidArgument("reply_handle is not a reply block handle (32 lower-case hex digits, from a no_reply Send)");
        }

        var wait = ParseWait(request.Wait, "wait");
        var received = await WaitForReplyAsync(request.ReplyHandle, wait, context);
        return new V1.AwaitReplyResponse { Reply = ByteString.CopyFrom(received.Data) };
    }

    // The request's `reply`, checked before anything is opened; null when the caller wants none.
    private ReplyRequest? ParseReply(V1.ReplyOverOtherRoute? reply)
    {
        if (reply is null)
        {
            return null;
        }

        var relays = reply.HasRelays ? reply.Relays : 3u;
        if (relays > node.Network.MaxRelays)
        {
            throw ControlErrors.InvalidArgument($"reply.relays must be between 0 and {node.Network.MaxRelays}, not {relays}");
        }

        return new ReplyRequest((int)relays, ParseWait(reply.Wait, "reply.wait"));
    }

    private TimeSpan? ParseWait(Duration? requested, string field)
    {
        if (requested is null)
        {
            return null;
        }

        var value = requested.ToTimeSpan();
        return value > TimeSpan.Zero && value <= _options.Replies.MaxLifetime
            ? value
            : throw ControlErrors.InvalidArgument($"{field} must be above zero and at most Overlay:Replies:MaxLifetime ({_options.Replies.MaxLifetime})");
    }

    // Makes the block over relays off the message's route and sends it as the message's first bytes.
    private async Task<OutstandingReply> AttachReplyBlockAsync(ReplyRequest reply, OverlayTunnel tunnel, CancellationToken token)
    {
        var made = await replies.CreateAsync(reply.Relays, tunnel.Route, token);
        using (made.Block)
        {
            await AttachedReplyBlock.WriteAsync(tunnel, made.Block, token);
        }

        return made;
    }

    // After the message's receipt: the reply, or no_reply once the caller's wait (or the block's life) is over.
    private async Task AwaitReplyAsync(ReplyRequest reply, OutstandingReply made, V1.SendResponse response, ServerCallContext context)
    {
        var received = await WaitForReplyAsync(made.Handle, reply.Wait, context);
        response.Reply = ByteString.CopyFrom(received.Data);
        response.ReplyRoute.AddRange(made.Route.Select(id => id.ToString()));
    }

    // The reply over the block `handle`; a wait that passes keeps the block (its reply can be collected later).
    private async Task<ReceivedReply> WaitForReplyAsync(string handle, TimeSpan? wait, ServerCallContext context)
    {
        using var waiting = new CancellationTokenSource(wait ?? Timeout.InfiniteTimeSpan, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(waiting.Token, context.CancellationToken);
        try
        {
            return await replies.WaitAsync(handle, abandonOnCancel: false, linked.Token);
        }
        catch (OperationCanceledException) when (waiting.IsCancellationRequested && !context.CancellationToken.IsCancellationRequested)
        {
            throw NoReply(handle, $"no reply came over the reply block within {wait}; collect a later one with AwaitReply (reply handle {handle}) until the block expires");
        }
        catch (TunnelException failure) when (failure.Kind == TunnelErrorKind.DestinationRefused)
        {
            throw ControlErrors.NotFound("unknown_reply_block", "this node holds no reply block by that handle: answered and collected, expired, or never made");
        }
        catch (TunnelException failure) when (failure.Kind == TunnelErrorKind.Expired)
        {
            throw NoReply(handle, $"no reply came over the reply block before it expired: {failure.Message}");
        }
        catch (TunnelException failure)
        {
            throw ControlErrors.FromTunnel(failure);
        }
    }

    private static RpcException NoReply(string handle, string detail)
    {
        var exception = ControlErrors.Error(StatusCode.DeadlineExceeded, "no_reply", detail);
        exception.Trailers.Add(ReplyHandleTrailer, handle);
        return exception;
    }

    private sealed record ReplyRequest(int Relays, TimeSpan? Wait);
}
