using System.Security.Cryptography;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Overlay.Errors;
using Overlay.Host.Tunnels;
using Overlay.Onion;
using V1 = Overlay.Protocol.Control.V1;

namespace Overlay.Host.Control;

/// <summary>Tunnels an application opens here: duplex, one-way, pings; listing and closing them.</summary>
internal sealed partial class ControlService
{
    public override Task<V1.ListTunnelsResponse> ListTunnels(V1.ListTunnelsRequest request, ServerCallContext context)
    {
        var caller = ControlCaller.Of(context);
        var now = time.GetUtcNow();
        var response = new V1.ListTunnelsResponse();
        response.Tunnels.AddRange(tunnels.Open.Where(t => caller.Role == ControlRole.Operator || t.Client == caller).Select(t => t.ToInfo(now)));
        return Task.FromResult(response);
    }

    public override Task<V1.CloseTunnelResponse> CloseTunnel(V1.CloseTunnelRequest request, ServerCallContext context)
    {
        var caller = ControlCaller.Of(context);
        if (!ControlTunnels.IsValidId(request.TunnelId))
        {
            throw ControlErrors.InvalidArgument($"tunnel_id '{request.TunnelId}' is not a tunnel id (16 hex digits, as `overlay tunnels` shows)");
        }

        var tunnel = tunnels.Find(request.TunnelId)
            ?? throw ControlErrors.NotFound("unknown_tunnel", $"no open tunnel {request.TunnelId}; `overlay tunnels` lists the open ones");
        if (caller.Role != ControlRole.Operator && tunnel.Client != caller)
        {
            throw ControlErrors.PermissionDenied($"tunnel {request.TunnelId} belongs to another client; only the operator may close it");
        }

        tunnel.Close();
        return Task.FromResult(new V1.CloseTunnelResponse());
    }

    public override async Task OpenTunnel(IAsyncStreamReader<V1.OpenTunnelRequest> requestStream, IServerStreamWriter<V1.OpenTunnelResponse> responseStream, ServerCallContext context)
    {
        var caller = ControlCaller.Of(context);
        if (!await requestStream.MoveNext(context.CancellationToken) || requestStream.Current.Open is null)
        {
            throw ControlErrors.InvalidArgument("the first message must carry `open` (the tunnel's target)");
        }

        var first = requestStream.Current;
        var target = ParseTarget(first.Open, TunnelMode.Duplex, context);
        // A first message's data that fits one link message travels in the header's message, its end
        // marker too: a short request costs every hop one message instead of two (as RoundTripAsync sends it).
        var withHeader = !first.Data.IsEmpty && first.Data.Length <= tunnelClient.MaxInitialDataBytes;
        if (withHeader)
        {
            target = target with { Request = target.Request with { InitialData = first.Data.Memory, CompleteWithInitialData = first.End } };
        }

        using var lease = tunnels.Reserve(caller, Control.MaxTunnelsPerClient);
        var id = ControlTunnels.NewId();
        await using var tunnel = await OpenOriginAsync(id, target, context);
        var entry = new ControlTunnel(id, V1.TunnelRole.Origin, V1.TunnelMode.Duplex, tunnel.Destination, tunnel.RelayCount, caller, time.GetUtcNow(),
            () => tunnel.BytesSent, () => tunnel.BytesReceived);
        tunnels.Add(entry);
        TunnelException? failure = null;
        try
        {
            var opened = new V1.TunnelOpened { TunnelId = id };
            opened.Route.AddRange(tunnel.Route.Select(r => r.ToString()));
            await responseStream.WriteAsync(new V1.OpenTunnelResponse { Opened = opened }, context.CancellationToken);
            await ControlStreams.PumpBothAsync(entry, context,
                token => ForwardRequestAsync(first, withHeader, requestStream, tunnel, token),
                token => ForwardReplyAsync(tunnel, responseStream, token));
        }
        catch (TunnelException exception)
        {
            failure = exception;
            ControlLog.TunnelFailed(logger, id, exception.Kind.ToTag(), exception);
            throw ControlErrors.FromTunnel(exception);
        }
        finally
        {
            tunnels.Remove(entry, failure);
        }
    }

    public override async Task<V1.SendResponse> Send(IAsyncStreamReader<V1.SendRequest> requestStream, ServerCallContext context)
    {
        var caller = ControlCaller.Of(context);
        if (!await requestStream.MoveNext(context.CancellationToken) || requestStream.Current.Target is null)
        {
            throw ControlErrors.InvalidArgument("the first message must carry `target`");
        }

        var first = requestStream.Current;
        var target = ParseTarget(first.Target, TunnelMode.OneWay, context);
        var reply = ParseReply(first.Reply);
        target = target with { Request = target.Request with { ReplyBlockAttached = reply is not null } };
        using var lease = tunnels.Reserve(caller, Control.MaxTunnelsPerClient);
        var id = ControlTunnels.NewId();
        var started = time.GetTimestamp();
        await using var tunnel = await OpenOriginAsync(id, target, context);
        var entry = new ControlTunnel(id, V1.TunnelRole.Origin, V1.TunnelMode.OneWay, tunnel.Destination, tunnel.RelayCount, caller, time.GetUtcNow(),
            () => tunnel.BytesSent, () => 0);
        tunnels.Add(entry);
        TunnelException? failure = null;
        Replies.OutstandingReply? replyBlock = null;
        var delivered = false;
        try
        {
            await ControlStreams.PumpBothAsync(entry, context, async token =>
            {
                if (reply is not null)
                {
                    replyBlock = await AttachReplyBlockAsync(reply, tunnel, token);
                }

                if (!first.Data.IsEmpty)
                {
                    await tunnel.WriteAsync(first.Data.Memory, final: false, token);
                }

                while (await requestStream.MoveNext(token))
                {
                    if (requestStream.Current.Target is not null)
                    {
                        throw ControlErrors.InvalidArgument("only the first message may carry `target`");
                    }

                    if (!requestStream.Current.Data.IsEmpty)
                    {
                        await tunnel.WriteAsync(requestStream.Current.Data.Memory, final: false, token);
                    }
                }

                await tunnel.CompleteAsync(token);
                // For a one-way tunnel, the end of the reply stream means the destination has it all.
                while (await tunnel.ReadAsync(new byte[1], token) > 0)
                {
                }
            }, _ => Task.CompletedTask);
            var response = new V1.SendResponse { TunnelId = id, BytesSent = (ulong)tunnel.BytesSent, Elapsed = Duration.FromTimeSpan(time.GetElapsedTime(started)) };
            response.Route.AddRange(tunnel.Route.Select(r => r.ToString()));
            delivered = true;
            if (reply is not null)
            {
                await AwaitReplyAsync(reply, replyBlock!, response, context);
            }

            return response;
        }
        catch (TunnelException exception)
        {
            failure = exception;
            ControlLog.TunnelFailed(logger, id, exception.Kind.ToTag(), exception);
            throw ControlErrors.FromTunnel(exception);
        }
        finally
        {
            tunnels.Remove(entry, failure);
            if (replyBlock is not null && !delivered)
            {
                // The message never arrived, so neither can a reply: the block goes.
                replies.Abandon(replyBlock.Handle);
            }
        }
    }

    public override async Task Ping(V1.PingRequest request, IServerStreamWriter<V1.PingAttempt> responseStream, ServerCallContext context)
    {
        var count = request.Count == 0 ? 1 : request.Count;
        if (count > Control.MaxPingCount)
        {
            throw ControlErrors.InvalidArgument($"count must be between 1 and {Control.MaxPingCount}");
        }

        var size = request.Bytes == 0 ? 64 : request.Bytes;
        if (size > Control.MaxMessageBytes)
        {
            throw ControlErrors.InvalidArgument($"bytes must be between 1 and {Control.MaxMessageBytes}");
        }

        var target = ParseTarget(new V1.TunnelTarget
        {
            Destination = request.Destination,
            Relays = request.HasRelays ? request.Relays : DefaultRelays,
            Deadline = request.Deadline,
            Route = { request.Route },
            Reuse = request.Reuse,
        }, TunnelMode.Duplex, context);
        var interval = request.Interval?.ToTimeSpan() ?? TimeSpan.Zero;
        if (interval < TimeSpan.Zero || interval > TimeSpan.FromHours(1))
        {
            throw ControlErrors.InvalidArgument("interval must be between 0 and 1 hour");
        }

        // A ping call is a tunnel at a time: it counts against the caller's quota like any other.
        using var lease = tunnels.Reserve(ControlCaller.Of(context), Control.MaxTunnelsPerClient);
        var payload = new byte[size];
        for (var attempt = 1u; attempt <= count; attempt++)
        {
            if (attempt > 1 && interval > TimeSpan.Zero)
            {
                await Task.Delay(interval, time, context.CancellationToken);
            }

            RandomNumberGenerator.Fill(payload);
            var result = new V1.PingAttempt { Attempt = attempt };
            var started = time.GetTimestamp();
            tunnels.CountPing();
            try
            {
                var trip = await tunnelClient.RoundTripAsync(target.Request, payload, Control.MaxMessageBytes, context.CancellationToken);
                result.Ok = true;
                result.Time = Duration.FromTimeSpan(trip.Elapsed);
                result.ReplyBytes = (uint)trip.Reply.Length;
                result.Route.AddRange(trip.Route.Select(r => r.ToString()));
            }
            catch (TunnelException failure)
            {
                result.Time = Duration.FromTimeSpan(time.GetElapsedTime(started));
                result.Error = ControlTunnels.ToFailure(failure);
            }

            await responseStream.WriteAsync(result, context.CancellationToken);
        }
    }

    private async Task<OverlayTunnel> OpenOriginAsync(string id, Target target, ServerCallContext context)
    {
        try
        {
            return await tunnelClient.OpenAsync(target.Request, context.CancellationToken);
        }
        catch (TunnelException failure)
        {
            tunnels.FailedToOpen(id, ControlCaller.Of(context), target.Request.Mode == TunnelMode.OneWay ? V1.TunnelMode.OneWay : V1.TunnelMode.Duplex, target.Request.Destination, target.Request.Relays, failure);
            ControlLog.TunnelFailed(logger, id, failure.Kind.ToTag(), failure);
            throw ControlErrors.FromTunnel(failure);
        }
    }

    // Request bytes from the application into the tunnel, until `end` or the request stream closes.
    // With `sentWithHeader` the first message's data (and its end) already went with the header.
    private static async Task ForwardRequestAsync(V1.OpenTunnelRequest first, bool sentWithHeader, IAsyncStreamReader<V1.OpenTunnelRequest> requests, OverlayTunnel tunnel, CancellationToken token)
    {
        var message = first;
        var written = sentWithHeader;
        while (true)
        {
            if (!written && (!message.Data.IsEmpty || message.End))
            {
                await tunnel.WriteAsync(message.Data.Memory, final: message.End, token);
            }

            if (message.End)
            {
                await ControlStreams.DrainAsync(requests, token);
                return;
            }

            if (!await requests.MoveNext(token))
            {
                await tunnel.CompleteAsync(token);
                return;
            }

            message = requests.Current;
            written = false;
            if (message.Open is not null)
            {
                throw ControlErrors.InvalidArgument("only the first message may carry `open`");
            }
        }
    }

    // Reply bytes from the tunnel to the application, then `end`.
    private static async Task ForwardReplyAsync(OverlayTunnel tunnel, IServerStreamWriter<V1.OpenTunnelResponse> responses, CancellationToken token)
    {
        var buffer = new byte[tunnel.PreferredWriteSize];
        int read;
        while ((read = await tunnel.ReadAsync(buffer, token)) > 0)
        {
            await responses.WriteAsync(new V1.OpenTunnelResponse { Data = ByteString.CopyFrom(buffer, 0, read) }, token);
        }

        await responses.WriteAsync(new V1.OpenTunnelResponse { End = true }, token);
    }
}
