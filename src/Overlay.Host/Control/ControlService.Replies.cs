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

        TimeSpan? wait = null;
        if (reply.Wait is { } requested)
        {
            var value = requested.ToTimeSpan();
            wait = value > TimeSpan.Zero && value <= _options.Replies.MaxLifetime
                ? value
                : throw ControlErrors.InvalidArgument($"reply.wait must be above zero and at most Overlay:Replies:MaxLifetime ({_options.Replies.MaxLifetime})");
        }

        return new ReplyRequest((int)relays, wait);
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
        using var wait = new CancellationTokenSource(reply.Wait ?? Timeout.InfiniteTimeSpan, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(wait.Token, context.CancellationToken);
        ReceivedReply received;
        try
        {
            received = await replies.WaitAsync(made.Handle, abandonOnCancel: true, linked.Token);
        }
        catch (OperationCanceledException) when (wait.IsCancellationRequested && !context.CancellationToken.IsCancellationRequested)
        {
            throw ControlErrors.Error(StatusCode.DeadlineExceeded, "no_reply",
                $"the message was delivered (tunnel {response.TunnelId}) but no reply came over its reply block within {reply.Wait}; a later reply is refused");
        }
        catch (TunnelException failure)
        {
            var reason = failure.Kind == TunnelErrorKind.Expired ? "no_reply" : failure.Kind.ToTag();
            throw ControlErrors.Error(failure.Kind == TunnelErrorKind.Expired ? StatusCode.DeadlineExceeded : StatusCode.Unavailable, reason,
                $"the message was delivered (tunnel {response.TunnelId}) but no reply came over its reply block: {failure.Message}");
        }

        response.Reply = ByteString.CopyFrom(received.Data);
        response.ReplyRoute.AddRange(made.Route.Select(id => id.ToString()));
    }

    private sealed record ReplyRequest(int Relays, TimeSpan? Wait);
}
