using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Overlay.Errors;
using Overlay.Host.Tunnels;
using Overlay.Onion;
using V1 = Overlay.Protocol.Control.V1;

namespace Overlay.Host.Control;

/// <summary>Tunnels that end here, handed to a listening application: Listen, then Accept per tunnel.</summary>
internal sealed partial class ControlService
{
    public override async Task Listen(V1.ListenRequest request, IServerStreamWriter<V1.ListenResponse> responseStream, ServerCallContext context)
    {
        var caller = ControlCaller.Of(context);
        var service = request.Service.Length == 0 ? null : request.Service;
        if (service is not null)
        {
            if (!Control.Services.TryGetValue(service, out var hosted))
            {
                throw ControlErrors.NotFound("unknown_service", $"this node hosts no service '{service}'; the operator configures them (Overlay:Control:Services)");
            }

            if (caller.Role != ControlRole.Operator && hosted.Owner != caller.Token)
            {
                throw ControlErrors.PermissionDenied($"service '{service}' belongs to another application (Overlay:Control:Services:{service}:Owner)");
            }
        }

        var listener = listeners.Register(caller, service, out var refusedBy)
            ?? throw ControlErrors.Error(StatusCode.ResourceExhausted, "too_many_listeners", refusedBy!);
        try
        {
            await context.WriteResponseHeadersAsync(new Metadata { { ControlErrors.ListeningHeader, "1" } });
            await UntilStoppingAsync(context, token => OfferAsync(listener, responseStream, token));
        }
        catch (OperationCanceledException) when (context.CancellationToken.IsCancellationRequested)
        {
            // The application stopped listening: the normal end of this stream (Unregister logs it).
            System.Diagnostics.Activity.Current?.AddEvent(new System.Diagnostics.ActivityEvent("overlay.listener.closed"));
        }
        finally
        {
            listeners.Unregister(listener);
        }
    }

    // Offers incoming tunnels to the listening application until the call or the node ends.
    private static async Task OfferAsync(ControlListener listener, IServerStreamWriter<V1.ListenResponse> responseStream, CancellationToken token)
    {
        await foreach (var offer in listener.Offers.ReadAllAsync(token))
        {
            if (offer.Decision.IsCompleted)
            {
                continue; // timed out while queued
            }

            await responseStream.WriteAsync(new V1.ListenResponse
            {
                Offer = new V1.IncomingTunnelOffer
                {
                    TunnelId = offer.Id,
                    Mode = ListenerDispatcher.ToWire(offer.Tunnel.Mode),
                    ReceivedAt = Timestamp.FromDateTimeOffset(offer.ReceivedAt),
                    Service = offer.Tunnel.Service ?? "",
                    ReplyBlockAttached = !offer.Tunnel.ReplyBlock.IsEmpty,
                },
            }, token);
        }
    }

    public override async Task Accept(IAsyncStreamReader<V1.AcceptRequest> requestStream, IServerStreamWriter<V1.AcceptResponse> responseStream, ServerCallContext context)
    {
        var caller = ControlCaller.Of(context);
        if (!await requestStream.MoveNext(context.CancellationToken))
        {
            throw ControlErrors.InvalidArgument("the first message must name the offered tunnel (`tunnel_id`)");
        }

        var first = requestStream.Current;
        if (!ControlTunnels.IsValidId(first.TunnelId))
        {
            throw ControlErrors.InvalidArgument($"tunnel_id '{first.TunnelId}' is not a tunnel id (16 hex digits, from a Listen offer)");
        }

        var pending = listeners.Find(first.TunnelId)
            ?? throw ControlErrors.NotFound("unknown_tunnel", $"no offered tunnel {first.TunnelId}: it was taken, refused, or waited longer than Overlay:Control:AcceptTimeout");
        if (pending.Listener.Client != caller && caller.Role != ControlRole.Operator)
        {
            throw ControlErrors.PermissionDenied($"tunnel {first.TunnelId} was offered to another client");
        }

        if (first.Refuse)
        {
            if (!pending.TryRefuse())
            {
                throw ControlErrors.NotFound("unknown_tunnel", $"tunnel {first.TunnelId} was already taken or refused");
            }

            await ControlStreams.DrainAsync(requestStream, context.CancellationToken);
            return;
        }

        // An accepted tunnel is one of the caller's tunnels. Over its quota the caller cannot take it,
        // and nobody else may: its origin hears at once that the destination refused it.
        ControlTunnels.Lease lease;
        try
        {
            lease = tunnels.Reserve(caller, Control.MaxTunnelsPerClient);
        }
        catch (RpcException)
        {
            pending.TryRefuse();
            throw;
        }

        using var _ = lease;
        if (!pending.TryTake())
        {
            throw ControlErrors.NotFound("unknown_tunnel", $"tunnel {first.TunnelId} was already taken or refused");
        }

        // From here the destination handler waits for Finish: every way out of this call reports.
        var incoming = pending.Tunnel;
        ControlTunnel? entry = null;
        Exception? handlerFailure = null;
        TunnelException? failure = null;
        try
        {
            var mode = ListenerDispatcher.ToWire(incoming.Mode);
            entry = new ControlTunnel(pending.Id, V1.TunnelRole.Destination, mode, null, 0, caller, pending.ReceivedAt,
                () => incoming.BytesSent, () => incoming.BytesReceived);
            tunnels.Add(entry);
            await responseStream.WriteAsync(new V1.AcceptResponse { Mode = mode, ReplyBlock = ByteString.CopyFrom(incoming.ReplyBlock.Span) }, context.CancellationToken);
            await ControlStreams.PumpBothAsync(entry, context,
                token => DeliverRequestAsync(incoming, responseStream, token),
                token => DeliverReplyAsync(first, requestStream, incoming, token),
                pending.TunnelToken);
        }
        catch (TunnelException exception)
        {
            (failure, handlerFailure) = (exception, exception);
            throw ControlErrors.FromTunnel(exception);
        }
        catch (OperationCanceledException exception) when (pending.TunnelToken.IsCancellationRequested)
        {
            handlerFailure = exception;
            failure = new TunnelException(TunnelErrorKind.DeadlineExceeded, 0, "the tunnel ended: its deadline passed or the origin went away");
            throw ControlErrors.FromTunnel(failure);
        }
        catch (RpcException) when (entry?.CloseRequested == true)
        {
            failure = new TunnelException(TunnelErrorKind.Cancelled, 0, "closed by CloseTunnel");
            handlerFailure = failure;
            throw;
        }
        catch (Exception exception)
        {
            // The application went away or sent something wrong: the origin learns the handler failed.
            failure = new TunnelException(TunnelErrorKind.HandlerFailed, 0, "the listening application failed", exception);
            handlerFailure = failure;
            throw;
        }
        finally
        {
            if (entry is not null)
            {
                tunnels.Remove(entry, failure);
            }

            pending.Finish(handlerFailure);
        }
    }

    // Request bytes from the incoming tunnel to the listening application, then `end`.
    private static async Task DeliverRequestAsync(IncomingTunnel incoming, IServerStreamWriter<V1.AcceptResponse> responses, CancellationToken token)
    {
        var buffer = new byte[Math.Max(incoming.ReplyChunkSize, 16 * 1024)];
        int read;
        while ((read = await incoming.ReadAsync(buffer, token)) > 0)
        {
            await responses.WriteAsync(new V1.AcceptResponse { Data = ByteString.CopyFrom(buffer, 0, read) }, token);
        }

        await responses.WriteAsync(new V1.AcceptResponse { End = true }, token);
    }

    // Reply bytes from the listening application into the incoming tunnel, until `end` or the stream closes.
    private static async Task DeliverReplyAsync(V1.AcceptRequest first, IAsyncStreamReader<V1.AcceptRequest> requests, IncomingTunnel incoming, CancellationToken token)
    {
        var duplex = incoming.Mode == TunnelMode.Duplex;
        var message = first;
        while (true)
        {
            if (!message.Data.IsEmpty)
            {
                if (!duplex)
                {
                    throw ControlErrors.InvalidArgument("a one-way tunnel has no reply: send no `data`");
                }

                await incoming.WriteAsync(message.Data.Memory, token);
            }

            if (message.End)
            {
                if (duplex)
                {
                    await incoming.CompleteAsync(token);
                }

                await ControlStreams.DrainAsync(requests, token);
                return;
            }

            if (!await requests.MoveNext(token))
            {
                if (duplex)
                {
                    await incoming.CompleteAsync(token);
                }

                return;
            }

            message = requests.Current;
            if (message.TunnelId.Length != 0 || message.Refuse)
            {
                throw ControlErrors.InvalidArgument("only the first message may carry `tunnel_id` or `refuse`");
            }
        }
    }
}
