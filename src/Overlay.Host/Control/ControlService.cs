using System.Reflection;
using System.Security.Cryptography;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Overlay.Errors;
using Overlay.Host.Directory;
using Overlay.Host.Keys;
using Overlay.Host.Options;
using Overlay.Host.Tunnels;
using Overlay.Identity;
using Overlay.Onion;
using V1 = Overlay.Protocol.Control.V1;

namespace Overlay.Host.Control;

/// <summary>
/// The Control gRPC service. Every call has passed <see cref="ControlAuthInterceptor"/>. Bad
/// requests end with InvalidArgument or NotFound before anything is opened; tunnel failures end
/// with the status of their kind and the failing hop; nothing a caller does here affects other
/// tunnels.
/// </summary>
internal sealed class ControlService(
    NodeState node,
    PeerDirectory directory,
    DirectoryService directoryService,
    TunnelClient tunnelClient,
    TunnelRegistry registry,
    OnionKeyService keys,
    ControlTunnels tunnels,
    ControlEvents events,
    ListenerRegistry listeners,
    ControlEndpoint endpoint,
    IOptions<OverlayOptions> options,
    TimeProvider time,
    IHostApplicationLifetime lifetime,
    ILogger<ControlService> logger) : V1.Control.ControlBase
{
    private const int DefaultRelays = 3;
    private static readonly string Version = typeof(ControlService).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0";
    private static readonly TimeSpan LongestDeadline = TimeSpan.FromHours(6);
    private readonly OverlayOptions _options = options.Value;
    private ControlEndpointOptions Control => _options.Control;

    public override Task<V1.NodeInfo> GetInfo(V1.GetInfoRequest request, ServerCallContext context)
    {
        var now = time.GetUtcNow();
        var key = node.Keys.Current?.Key;
        var info = new V1.NodeInfo
        {
            NodeId = node.Id.ToString(),
            LinkEndpoint = node.LinkEndpoint?.ToString() ?? "",
            ControlEndpoint = endpoint.Url.ToString(),
            ProtocolVersion = NodeDescriptor.ProtocolVersion,
            OnionEpoch = key?.Epoch ?? 0,
            StartedAt = Timestamp.FromDateTimeOffset(endpoint.StartedAt),
            Uptime = Duration.FromTimeSpan(now - endpoint.StartedAt),
            MaxRelays = (uint)node.Network.MaxRelays,
            CellSize = (uint)node.Network.CellSize,
            CellConstruction = node.Network.Construction.ToString(),
            PeersUp = (uint)directory.UpCount,
            PeersKnown = (uint)directory.Peers.Count,
            TunnelsActive = (uint)Math.Max(0, registry.Active),
            ControlTunnels = (uint)tunnels.Count,
            Listeners = (uint)listeners.Count,
            CallerRole = ControlCaller.Of(context).Role == ControlRole.Operator ? "operator" : "application",
            Version = Version,
        };
        if (key is not null)
        {
            info.OnionValidFrom = Timestamp.FromDateTimeOffset(key.ValidFrom);
            info.OnionExpiresAt = Timestamp.FromDateTimeOffset(key.ExpiresAt);
        }

        return Task.FromResult(info);
    }

    public override Task<V1.Stats> GetStats(V1.GetStatsRequest request, ServerCallContext context)
    {
        var peers = directory.Peers;
        var cache = node.Keys.Current?.ReplayCache;
        return Task.FromResult(new V1.Stats
        {
            Time = events.Now(),
            TunnelsServed = (uint)Math.Max(0, registry.Served),
            TunnelsOriginated = (uint)Math.Max(0, registry.Originated),
            ControlTunnelsOpen = (uint)tunnels.Count,
            ControlTunnelsOpenedTotal = (ulong)tunnels.OpenedTotal,
            ControlTunnelsFailedTotal = (ulong)tunnels.FailedTotal,
            ControlBytesSentTotal = (ulong)tunnels.BytesSentTotal,
            ControlBytesReceivedTotal = (ulong)tunnels.BytesReceivedTotal,
            Listeners = (uint)listeners.Count,
            IncomingToListenersTotal = (ulong)listeners.DeliveredTotal,
            IncomingEchoedTotal = (ulong)listeners.EchoedTotal,
            IncomingRefusedTotal = (ulong)listeners.RefusedTotal,
            EventSubscribers = (uint)(events.Events.Count + events.Peers.Count),
            EventsPublishedTotal = (ulong)events.Events.PublishedTotal,
            EventConsumersDroppedTotal = (ulong)(events.Events.DroppedTotal + events.Peers.DroppedTotal),
            PeersUp = (uint)peers.Count(p => p.Status == PeerStatus.Up),
            PeersSuspect = (uint)peers.Count(p => p.Status == PeerStatus.Suspect),
            PeersDown = (uint)peers.Count(p => p.Status == PeerStatus.Down),
            ReplayCacheEntries = (uint)(cache?.Count ?? 0),
            ReplayCacheCapacity = (uint)(cache?.Capacity ?? 0),
            PingsTotal = (ulong)tunnels.PingsTotal,
        });
    }

    public override Task<V1.ListPeersResponse> ListPeers(V1.ListPeersRequest request, ServerCallContext context)
    {
        var response = new V1.ListPeersResponse();
        response.Peers.AddRange(directory.Peers.OrderBy(p => p.Descriptor.Id.ToString(), StringComparer.Ordinal).Select(ToPeer));
        response.Banned.AddRange(directory.Banned.Select(id => id.ToString()).Order(StringComparer.Ordinal));
        return Task.FromResult(response);
    }

    public override async Task<V1.Peer> AddPeer(V1.AddPeerRequest request, ServerCallContext context)
    {
        if (!Uri.TryCreate(request.Endpoint, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https") || url.Port <= 0)
        {
            throw ControlErrors.InvalidArgument($"endpoint '{request.Endpoint}' is not an http or https URL with a port (e.g. http://10.0.0.7:7400)");
        }

        var descriptor = await directoryService.AddPeerAsync(url, context.CancellationToken);
        if (descriptor is null)
        {
            throw ControlErrors.Error(StatusCode.Unavailable, "peer_unreachable",
                $"the node at {url} did not prove its identity (unreachable, another network, or it advertises another endpoint); see this node's log");
        }

        return directory.Find(descriptor.Id) is { } peer
            ? ToPeer(peer)
            : throw ControlErrors.Error(StatusCode.FailedPrecondition, "not_admitted",
                $"node {descriptor.Id.ToShortString()} proved its identity but is not admitted (banned, not in Overlay:Directory:AllowedNodeIds, or its address block or the directory is full)");
    }

    public override Task<V1.RemovePeerResponse> RemovePeer(V1.RemovePeerRequest request, ServerCallContext context)
    {
        var id = ParseNodeId(request.NodeId, "node_id");
        var known = directory.Find(id) is not null;
        if (!known && !request.Ban)
        {
            throw ControlErrors.NotFound("unknown_peer", $"peer {id.ToShortString()} is not in this node's directory; `overlay peers` lists the known ones");
        }

        var removed = request.Ban ? directory.Ban(id) : directory.Remove(id);
        return Task.FromResult(new V1.RemovePeerResponse { Removed = removed, Banned = request.Ban });
    }

    public override async Task WatchPeers(V1.WatchPeersRequest request, IServerStreamWriter<V1.PeerChange> responseStream, ServerCallContext context)
    {
        using var subscription = events.Peers.Subscribe(Control.EventsBufferSize);
        if (request.IncludeCurrent)
        {
            foreach (var peer in directory.Peers)
            {
                subscription.Offer(new V1.PeerChange
                {
                    NodeId = peer.Descriptor.Id.ToString(),
                    Status = ControlEvents.ToWire(peer.Status),
                    Endpoint = peer.Descriptor.Endpoint.ToString(),
                    Time = Timestamp.FromDateTimeOffset(peer.LastSeen),
                });
            }
        }

        await context.WriteResponseHeadersAsync(new Metadata());
        await UntilStoppingAsync(context, token => subscription.PumpAsync(responseStream, "peer", token, () => ControlLog.ConsumerDropped(logger, "peer", subscription.Capacity)));
    }

    public override async Task WatchEvents(V1.WatchEventsRequest request, IServerStreamWriter<V1.NodeEvent> responseStream, ServerCallContext context)
    {
        if (request.EventTypes.Any(t => t == V1.EventType.Unspecified || !System.Enum.IsDefined(t)))
        {
            throw ControlErrors.InvalidArgument("event_types: unknown event type");
        }

        var types = request.EventTypes.ToHashSet();
        using var subscription = events.Events.Subscribe(Control.EventsBufferSize, types.Count == 0 ? null : e => types.Contains(e.Type));
        await context.WriteResponseHeadersAsync(new Metadata());
        await UntilStoppingAsync(context, token => subscription.PumpAsync(responseStream, "events", token, () => ControlLog.ConsumerDropped(logger, "events", subscription.Capacity)));
    }

    public override async Task<V1.RotateKeysResponse> RotateKeys(V1.RotateKeysRequest request, ServerCallContext context)
    {
        var rotation = keys.RotateSoon();
        var previous = rotation.Current.Key;
        if (rotation.At > time.GetUtcNow())
        {
            return new V1.RotateKeysResponse
            {
                Outcome = V1.RotationOutcome.Deferred,
                PreviousEpoch = previous.Epoch,
                Epoch = previous.Epoch,
                ValidFrom = Timestamp.FromDateTimeOffset(previous.ValidFrom),
                ExpiresAt = Timestamp.FromDateTimeOffset(previous.ExpiresAt),
                RotatesAt = Timestamp.FromDateTimeOffset(rotation.At),
            };
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(30));
        OnionKeyEpoch rotated;
        try
        {
            rotated = await rotation.Rotated.WaitAsync(timeout.Token);
        }
        catch (OperationCanceledException) when (rotation.Rotated.IsCanceled)
        {
            throw ShuttingDown();
        }
        catch (OperationCanceledException) when (!context.CancellationToken.IsCancellationRequested)
        {
            throw ControlErrors.Error(StatusCode.DeadlineExceeded, "timeout", "the key rotation did not complete within 30 s; see the node's log");
        }

        return new V1.RotateKeysResponse
        {
            Outcome = V1.RotationOutcome.Rotated,
            PreviousEpoch = previous.Epoch,
            Epoch = rotated.Epoch,
            ValidFrom = Timestamp.FromDateTimeOffset(rotated.Key.ValidFrom),
            ExpiresAt = Timestamp.FromDateTimeOffset(rotated.Key.ExpiresAt),
        };
    }

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
            await PumpBothAsync(entry, context,
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
        using var lease = tunnels.Reserve(caller, Control.MaxTunnelsPerClient);
        var id = ControlTunnels.NewId();
        var started = time.GetTimestamp();
        await using var tunnel = await OpenOriginAsync(id, target, context);
        var entry = new ControlTunnel(id, V1.TunnelRole.Origin, V1.TunnelMode.OneWay, tunnel.Destination, tunnel.RelayCount, caller, time.GetUtcNow(),
            () => tunnel.BytesSent, () => 0);
        tunnels.Add(entry);
        TunnelException? failure = null;
        try
        {
            await PumpBothAsync(entry, context, async token =>
            {
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
        }, TunnelMode.Duplex, context);
        var interval = request.Interval?.ToTimeSpan() ?? TimeSpan.Zero;
        if (interval < TimeSpan.Zero || interval > TimeSpan.FromHours(1))
        {
            throw ControlErrors.InvalidArgument("interval must be between 0 and 1 hour");
        }

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

    public override async Task Listen(V1.ListenRequest request, IServerStreamWriter<V1.ListenResponse> responseStream, ServerCallContext context)
    {
        var caller = ControlCaller.Of(context);
        var listener = listeners.Register(caller)
            ?? throw ControlErrors.Error(StatusCode.ResourceExhausted, "too_many_listeners", $"{Control.MaxListeners} applications already listen (Overlay:Control:MaxListeners)");
        try
        {
            await context.WriteResponseHeadersAsync(new Metadata());
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
                },
            }, token);
        }
    }

    /// <summary>
    /// Runs a stream that lasts as long as the client likes (Listen, WatchEvents, WatchPeers)
    /// until the call ends or the node begins to stop; then it ends with Unavailable, so Kestrel's
    /// shutdown does not wait on it.
    /// </summary>
    private async Task UntilStoppingAsync(ServerCallContext context, Func<CancellationToken, Task> stream)
    {
        var stopping = lifetime.ApplicationStopping;
        using var call = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, stopping);
        try
        {
            await stream(call.Token);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested && !context.CancellationToken.IsCancellationRequested)
        {
            throw ShuttingDown();
        }

        if (stopping.IsCancellationRequested && !context.CancellationToken.IsCancellationRequested)
        {
            throw ShuttingDown();
        }
    }

    private static RpcException ShuttingDown() =>
        ControlErrors.Error(StatusCode.Unavailable, "shutting_down", "the node is shutting down; reconnect to it (or another node) once it is back");

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

            await DrainAsync(requestStream, context.CancellationToken);
            return;
        }

        if (!pending.TryTake())
        {
            throw ControlErrors.NotFound("unknown_tunnel", $"tunnel {first.TunnelId} was already taken or refused");
        }

        var incoming = pending.Tunnel;
        var mode = ListenerDispatcher.ToWire(incoming.Mode);
        var entry = new ControlTunnel(pending.Id, V1.TunnelRole.Destination, mode, null, 0, caller, pending.ReceivedAt,
            () => incoming.BytesSent, () => incoming.BytesReceived);
        tunnels.Add(entry);
        Exception? handlerFailure = null;
        TunnelException? failure = null;
        try
        {
            await responseStream.WriteAsync(new V1.AcceptResponse { Mode = mode }, context.CancellationToken);
            await PumpBothAsync(entry, context,
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
        catch (RpcException) when (entry.CloseRequested)
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
            tunnels.Remove(entry, failure);
            pending.Finish(handlerFailure);
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
            tunnels.FailedToOpen(id, target.Request.Mode == TunnelMode.OneWay ? V1.TunnelMode.OneWay : V1.TunnelMode.Duplex, target.Request.Destination, target.Request.Relays, failure);
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
                await DrainAsync(requests, token);
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

                await DrainAsync(requests, token);
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

    // After `end`, the caller still closes its request stream; anything more is an error.
    private static async Task DrainAsync<T>(IAsyncStreamReader<T> requests, CancellationToken token)
        where T : IMessage
    {
        while (await requests.MoveNext(token))
        {
            if (requests.Current.CalculateSize() != 0)
            {
                throw ControlErrors.InvalidArgument("nothing may follow `end`");
            }
        }
    }

    /// <summary>
    /// Runs both directions of a tunnel; the first failure cancels the other and is the one
    /// reported. A CloseTunnel ends the call with Cancelled.
    /// </summary>
    private static async Task PumpBothAsync(ControlTunnel entry, ServerCallContext context, Func<CancellationToken, Task> forward, Func<CancellationToken, Task> backward,
        CancellationToken tunnelToken = default)
    {
        using var both = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, entry.Closing.Token, tunnelToken);
        Exception? first = null;
        async Task Run(Func<CancellationToken, Task> pump)
        {
            try
            {
                await pump(both.Token);
            }
            catch (Exception exception)
            {
                Interlocked.CompareExchange(ref first, exception, null);
                await both.CancelAsync();
            }
        }

        await Task.WhenAll(Run(forward), Run(backward));
        if (entry.CloseRequested)
        {
            throw ControlErrors.Error(StatusCode.Cancelled, "closed", $"tunnel {entry.Id} was closed by CloseTunnel");
        }

        if (first is not null)
        {
            if (first is OperationCanceledException && context.CancellationToken.IsCancellationRequested)
            {
                throw first; // the caller went away or its deadline passed
            }

            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(first);
        }
    }

    private Target ParseTarget(V1.TunnelTarget target, TunnelMode mode, ServerCallContext context)
    {
        var maxRelays = node.Network.MaxRelays;
        TimeSpan? deadline = null;
        if (target.Deadline is { } requested)
        {
            var value = requested.ToTimeSpan();
            if (value <= TimeSpan.Zero || value > LongestDeadline)
            {
                throw ControlErrors.InvalidArgument("deadline must be positive and at most 6 hours");
            }

            deadline = value;
        }

        if (context.Deadline != DateTime.MaxValue)
        {
            var remaining = context.Deadline - time.GetUtcNow().UtcDateTime;
            deadline = deadline is { } d && d < remaining ? d : remaining;
        }

        if (target.Route.Count > 0)
        {
            if (target.Route.Count > maxRelays + 1)
            {
                throw ControlErrors.InvalidArgument($"route has {target.Route.Count} hops; at most {maxRelays + 1} (this network's MaxRelays is {maxRelays})");
            }

            var route = new List<NodeId>(target.Route.Count);
            for (var i = 0; i < target.Route.Count; i++)
            {
                var id = ParseNodeId(target.Route[i], $"route[{i}]");
                var last = i == target.Route.Count - 1;
                if (directory.Find(id) is null)
                {
                    throw ControlErrors.NotFound(last ? "unknown_destination" : "unknown_relay",
                        $"route[{i}] ({id.ToShortString()}) is not in this node's directory; `overlay peers` lists the nodes it knows");
                }

                route.Add(id);
            }

            return new Target(new TunnelRequest { Route = route, Destination = route[^1], Relays = route.Count - 1, Mode = mode, Deadline = deadline });
        }

        var relays = target.HasRelays ? target.Relays : DefaultRelays;
        if (relays > maxRelays)
        {
            throw ControlErrors.InvalidArgument($"relays must be between 0 and {maxRelays} (this network's MaxRelays), not {relays}");
        }

        NodeId? destination = null;
        if (target.Destination.Length > 0)
        {
            var id = ParseNodeId(target.Destination, "destination");
            if (id == node.Id)
            {
                throw ControlErrors.InvalidArgument("the destination is this node itself; name another node");
            }

            if (directory.Find(id) is null)
            {
                throw ControlErrors.NotFound("unknown_destination", $"destination {id.ToShortString()} is not in this node's directory; `overlay peers` lists the nodes it knows");
            }

            destination = id;
        }

        return new Target(new TunnelRequest { Destination = destination, Relays = (int)relays, Mode = mode, Deadline = deadline });
    }

    private static NodeId ParseNodeId(string value, string field) =>
        NodeId.TryParse(value, out var id) && !id.IsNone
            ? id
            : throw ControlErrors.InvalidArgument($"{field} '{(value.Length > 80 ? value[..80] + "..." : value)}' is not a node id (64 hex digits)");

    private static V1.Peer ToPeer(PeerInfo peer) => new()
    {
        NodeId = peer.Descriptor.Id.ToString(),
        Endpoint = peer.Descriptor.Endpoint.ToString(),
        Status = ControlEvents.ToWire(peer.Status),
        ConsecutiveFailures = (uint)peer.ConsecutiveFailures,
        LastSeen = Timestamp.FromDateTimeOffset(peer.LastSeen),
        OnionEpoch = peer.Descriptor.OnionEpoch,
        OnionExpiresAt = Timestamp.FromDateTimeOffset(peer.Descriptor.OnionExpiresAt),
    };

    private sealed record Target(TunnelRequest Request);
}
