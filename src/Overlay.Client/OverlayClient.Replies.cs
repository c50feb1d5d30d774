using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Overlay.Client.Internal;
using Overlay.Protocol.Control.V1;

namespace Overlay.Client;

/// <summary>Replies over another route: a message that carries a reply block, and the one reply sent over it.</summary>
public sealed partial class OverlayClient
{
    /// <summary>
    /// Sends <paramref name="content"/> one way with a reply block attached (its relays share none with the
    /// message's route) and completes when the reply arrives: <see cref="SendResponse.Reply"/> holds it,
    /// <see cref="SendResponse.ReplyRoute"/> the route it came over. No reply within <paramref name="wait"/>
    /// (default: until the block expires) throws <see cref="OverlayNoReplyException"/>: the message itself was
    /// delivered, and a later reply can be collected with <see cref="AwaitReplyAsync"/>.
    /// </summary>
    /// <param name="target">Where the message goes.</param>
    /// <param name="content">The message.</param>
    /// <param name="replyRelays">Relays of the reply route; null for the node's default (3).</param>
    /// <param name="wait">How long to wait for the reply once the message is delivered.</param>
    /// <param name="cancellationToken">Ends the send or the wait.</param>
    public Task<SendResponse> SendWithReplyAsync(OverlayTarget target, ReadOnlyMemory<byte> content, int? replyRelays = null, TimeSpan? wait = null,
        CancellationToken cancellationToken = default)
    {
        var reply = new ReplyOverOtherRoute();
        if (replyRelays is { } relays)
        {
            reply.Relays = checked((uint)relays);
        }

        if (wait is { } value)
        {
            reply.Wait = Duration.FromTimeSpan(value);
        }

        return SendAsync(target, async (write, token) => await write(content, token), cancellationToken, reply);
    }

    /// <summary>
    /// Waits for the reply over a block this node made, by the handle an <see cref="OverlayNoReplyException"/>
    /// gave (also after the node restarted). No reply within <paramref name="wait"/> (default: until the block
    /// expires) throws <see cref="OverlayNoReplyException"/> again; a handle the node no longer holds,
    /// <see cref="OverlayNotFoundException"/>.
    /// </summary>
    public async Task<ReadOnlyMemory<byte>> AwaitReplyAsync(string replyHandle, TimeSpan? wait = null, CancellationToken cancellationToken = default)
    {
        var request = new AwaitReplyRequest { ReplyHandle = replyHandle };
        if (wait is { } value)
        {
            request.Wait = Duration.FromTimeSpan(value);
        }

        try
        {
            return (await Api.AwaitReplyAsync(request, cancellationToken: cancellationToken)).Reply.Memory;
        }
        catch (RpcException exception)
        {
            throw OverlayErrors.From(exception, Endpoint);
        }
    }

    /// <summary>
    /// Sends the one reply <paramref name="replyBlock"/> allows (from <see cref="TunnelStream.ReplyBlock"/>, or handed
    /// over by other means) and completes on its maker's receipt. A spent block fails with reason <c>replayed</c>
    /// (hop 1), an expired one with <c>expired</c>, both as <see cref="OverlayTunnelException"/>.
    /// </summary>
    public async Task<SendReplyResponse> SendReplyAsync(ReadOnlyMemory<byte> replyBlock, ReadOnlyMemory<byte> reply, CancellationToken cancellationToken = default)
    {
        try
        {
            return await Api.SendReplyAsync(new SendReplyRequest
            {
                ReplyBlock = ByteString.CopyFrom(replyBlock.Span),
                Data = ByteString.CopyFrom(reply.Span),
            }, cancellationToken: cancellationToken);
        }
        catch (RpcException exception)
        {
            throw OverlayErrors.From(exception, Endpoint);
        }
    }
}
