using System.Diagnostics;
using System.Net.Sockets;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Overlay.Cells;
using Overlay.Errors;
using Overlay.Host.Directory;
using Overlay.Host.Link;
using Overlay.Host.Link.Tls;
using Overlay.Host.Options;
using Overlay.Host.Telemetry;
using Overlay.Host.Tunnels.Streams;
using Overlay.Identity;
using Overlay.Onion;
using Overlay.Protocol.V1;

namespace Overlay.Host.Tunnels;

/// <summary>
/// Opens tunnels from this node. The header goes out at once (one-shot setup); if the first hop
/// cannot be reached or refuses before any payload left, the tunnel is retried on a fresh route,
/// at most MaxRetries times. A header that carries request bytes is retried only when the first
/// hop was never connected (it might otherwise have the request already). Explicit routes and
/// one-way sends are never retried.
/// </summary>
public sealed partial class TunnelClient
{
    private readonly NodeState _node;
    private readonly RouteSelector _routes;
    private readonly PeerDirectory _directory;
    private readonly PeerChannels _channels;
    private readonly TunnelRegistry _registry;
    private readonly OverlayMetrics _metrics;
    private readonly OverlayOptions _options;
    private readonly TelemetryOptions _telemetry;
    private readonly TimeProvider _time;
    private readonly ILogger<TunnelClient> _logger;

    internal TunnelClient(NodeState node, RouteSelector routes, PeerDirectory directory, PeerChannels channels, TunnelRegistry registry,
        OverlayMetrics metrics, IOptions<OverlayOptions> options, TelemetryOptions telemetry, TimeProvider time, ILogger<TunnelClient> logger)
    {
        _telemetry = telemetry;
        _node = node;
        _routes = routes;
        _directory = directory;
        _channels = channels;
        _registry = registry;
        _metrics = metrics;
        _options = options.Value;
        _time = time;
        _logger = logger;
        MaxInitialDataBytes = new CellLayout(node.Network).ForwardPayloadCapacity * _options.Tunnels.MaxCellsPerMessage;
        Routes = new StreamRoutes(OpenAsync, _options.Tunnels.Streams, node.Network.MaxDeadlineClass, _options.Tunnels.DefaultDeadline, time);
        // A kept route must not hold a drain up for its idle timeout: it closes once its streams are over.
        registry.DrainStarted.Register(static routes => ((StreamRoutes)routes!).Drain(), Routes);
    }

    /// <summary>The routes kept for streams (<see cref="TunnelRequest.Reuse"/>).</summary>
    internal StreamRoutes Routes { get; }

    /// <summary>The most request bytes that travel with the header: one link message of cells.</summary>
    public int MaxInitialDataBytes { get; }

    /// <summary>Opens a tunnel; the deadline clock starts now.</summary>
    public async Task<OverlayTunnel> OpenAsync(TunnelRequest request, CancellationToken cancellationToken = default)
    {
        if (_registry.Draining)
        {
            throw new TunnelException(TunnelErrorKind.Busy, 0, "this node is shutting down");
        }

        if (request.Route is null && (request.Relays < 0 || request.Relays > _node.Network.MaxRelays))
        {
            throw new TunnelException(TunnelErrorKind.LimitExceeded, 0, $"relays must be between 0 and {_node.Network.MaxRelays}");
        }

        if (request.InitialData.Length > MaxInitialDataBytes)
        {
            throw new ArgumentException($"at most {MaxInitialDataBytes} bytes travel with the header; write the rest", nameof(request));
        }

        if (request.Reuse)
        {
            return await OpenStreamAsync(request, cancellationToken);
        }

        var deadlineClass = DeadlineClasses.FromTimeSpan(request.Deadline ?? _options.Tunnels.DefaultDeadline);
        if (deadlineClass > _node.Network.MaxDeadlineClass)
        {
            throw new TunnelException(TunnelErrorKind.LimitExceeded, 0, $"the network allows tunnel deadlines up to {_node.Network.MaxDeadlineClass.ToTimeSpan()}");
        }

        var deadline = new CancellationTokenSource(deadlineClass.ToTimeSpan(), _time);
        var lifetime = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, cancellationToken);
        var opened = _time.GetTimestamp();
        using var scope = _logger.BeginScope(TunnelScope.New());
        // The origin's own trace may hang under the application's (it never leaves this node).
        var activity = OverlayTelemetry.ActivitySource.StartActivity("overlay.tunnel", ActivityKind.Client);
        activity?.SetTag(TunnelTracing.NodeTag, _node.Id.ToString());
        activity?.SetTag(OverlayTelemetry.RoleTag, TunnelRoles.Origin);
        var retryable = request.Route is null && request.Mode == TunnelMode.Duplex;
        var excluded = new List<NodeId>();
        try
        {
            for (var attempt = 0; ; attempt++)
            {
                IReadOnlyList<NodeDescriptor> route;
                using (TunnelTracing.StartPhase("overlay.route.select", activity))
                {
                    route = request.Route is { } explicitRoute
                        ? _routes.Resolve(explicitRoute)
                        : await _routes.SelectAsync(request.Destination, request.Relays, excluded, lifetime.Token);
                }

                try
                {
                    var tunnel = await StartAsync(route, request, deadlineClass, deadline, lifetime, activity);
                    _metrics.SetupCompleted(_time.GetElapsedTime(opened));
                    return tunnel;
                }
                catch (TunnelException failure) when (request.Route is null && attempt < _options.Tunnels.MaxRetries && failure.Hop >= 1 && !lifetime.IsCancellationRequested
                    && failure.InnerException is ArgumentException)
                {
                    // No header could be built (a hop's onion key is unusable), so nothing left this node, in
                    // any mode: drop the peer (admission refuses its key if it comes back) and try a fresh route.
                    Log.OriginRetry(_logger, failure.Kind.ToTag(), attempt + 1);
                    excluded.Add(route[failure.Hop - 1].Id);
                    _directory.Remove(route[failure.Hop - 1].Id);
                }
                catch (TunnelException failure) when (retryable && attempt < _options.Tunnels.MaxRetries && failure.Hop == 1 && !lifetime.IsCancellationRequested
                    && (!CarriesRequest(request) || NeverConnected(failure.InnerException)))
                {
                    Log.OriginRetry(_logger, failure.Kind.ToTag(), attempt + 1);
                    excluded.Add(route[0].Id);
                    _directory.ReportFailure(route[0].Id);
                }
            }
        }
        catch (TunnelException failure)
        {
            Log.OriginFailed(_logger, request.Relays, failure.Hop, failure.Kind.ToTag());
            TunnelTracing.Fail(activity, failure.Kind, "open");
            activity?.SetTag(OverlayTelemetry.FailingHopTag, failure.Hop);
            _metrics.TunnelFailed(TunnelRoles.Origin, failure.Kind);
            activity?.Dispose();
            lifetime.Dispose();
            deadline.Dispose();
            throw;
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            TunnelTracing.Fail(activity, TunnelErrorKind.DeadlineExceeded, "open");
            activity?.Dispose();
            lifetime.Dispose();
            deadline.Dispose();
            throw new TunnelException(TunnelErrorKind.DeadlineExceeded, 0, "the deadline passed while opening the tunnel");
        }
        catch
        {
            activity?.Dispose();
            lifetime.Dispose();
            deadline.Dispose();
            throw;
        }
    }

    // A stream on a kept route: its Open frame goes out with the request bytes given (one message), or alone.
    private async Task<OverlayTunnel> OpenStreamAsync(TunnelRequest request, CancellationToken cancellationToken)
    {
        var stream = await Routes.OpenAsync(request, cancellationToken);
        var tunnel = new OverlayTunnel(stream);
        try
        {
            await tunnel.WriteAsync(request.InitialData, request.CompleteWithInitialData, cancellationToken);
        }
        catch
        {
            await tunnel.DisposeAsync();
            throw;
        }

        return tunnel;
    }

    // Request bytes travel in the header's message: a write that failed after they reached hop 1 must
    // not be retried on another route, or the destination could receive the request twice.
    private static bool CarriesRequest(TunnelRequest request) => !request.InitialData.IsEmpty || request.CompleteWithInitialData;

    // The connection to hop 1 was never made, so nothing of the request left this node.
    internal static bool NeverConnected(Exception? exception)
    {
        for (var cause = exception; cause is not null; cause = cause is RpcException rpc ? rpc.Status.DebugException ?? rpc.InnerException : cause.InnerException)
        {
            // Errors a socket only reports while connecting (a reset or an abort could follow a send), and a
            // TLS handshake this side failed (HTTP/2 starts only after it; a refused certificate among them).
            if (cause is HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError or HttpRequestError.SecureConnectionError }
                || cause is SocketException { SocketErrorCode: SocketError.ConnectionRefused or SocketError.HostUnreachable or SocketError.NetworkUnreachable
                    or SocketError.HostNotFound or SocketError.AddressNotAvailable })
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Sends <paramref name="request"/> as one message and reads the whole reply.</summary>
    public async Task<RoundTrip> RoundTripAsync(TunnelRequest tunnelRequest, ReadOnlyMemory<byte> request, int maxReplyBytes = 16 * 1024 * 1024, CancellationToken cancellationToken = default)
    {
        var started = _time.GetTimestamp();
        // A request that fits in one message travels with the header (one message per hop), whole.
        var oneShot = request.Length <= MaxInitialDataBytes;
        await using var tunnel = await OpenAsync(oneShot ? tunnelRequest with { InitialData = request, CompleteWithInitialData = true } : tunnelRequest, cancellationToken);
        // Otherwise write and read at once: a reply that starts before the request ends (an echo)
        // would fill the route's windows and stall a large request until the deadline.
        var writing = oneShot ? Task.CompletedTask : tunnel.WriteAsync(request, final: true, cancellationToken).AsTask();
        using var reply = new MemoryStream();
        var buffer = new byte[tunnel.PreferredWriteSize];
        try
        {
            int read;
            while ((read = await tunnel.ReadAsync(buffer, cancellationToken)) > 0)
            {
                if (reply.Length + read > maxReplyBytes)
                {
                    throw new TunnelException(TunnelErrorKind.LimitExceeded, 0, $"the reply exceeds {maxReplyBytes} bytes");
                }

                reply.Write(buffer, 0, read);
            }
        }
        catch
        {
            // The read's failure is the one to report: stop the writer, and observe its (consequent)
            // failure before the tunnel is disposed under it.
            await tunnel.AbortAsync();
            await writing.ContinueWith(static t => t.Exception, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            throw;
        }

        await writing;

        var elapsed = _time.GetElapsedTime(started);
        _metrics.RoundTripCompleted(elapsed);
        return new RoundTrip(tunnel.Route, reply.ToArray(), elapsed);
    }

    private async Task<OverlayTunnel> StartAsync(IReadOnlyList<NodeDescriptor> route, TunnelRequest request, DeadlineClass deadlineClass,
        CancellationTokenSource deadline, CancellationTokenSource lifetime, Activity? activity)
    {
        var mode = request.Mode;
        var header = new byte[_node.HeaderBuilder.HeaderSize];
        OriginTunnelKeys keys;
        using (TunnelTracing.StartPhase("overlay.header.build", activity))
        {
            // Sealed mode: a fresh random root per tunnel (never the caller's trace), sealed only into the
            // layers of hops whose descriptor says they honour it; the origin's span links to it.
            byte[] sealedContexts = [];
            if (_telemetry.SealTraceContext)
            {
                var sealedRoot = TunnelTracing.NewSealedRoot();
                sealedContexts = TunnelTracing.SealFor(route, sealedRoot);
                activity?.AddLink(new ActivityLink(sealedRoot, new ActivityTagsCollection { [TunnelTracing.SealedLinkTag] = true }));
            }

            try
            {
                keys = _node.HeaderBuilder.Build([.. route.Select(d => d.ToRouteHop())], mode, deadlineClass, header, sealedContexts, request.Service,
                    replyBlockAttached: request.ReplyBlockAttached);
            }
            catch (ArgumentException exception)
            {
                // Name the hop whose onion key no header can be built to, so the route is retried without it.
                var hop = route.ToList().FindIndex(d => !NodeDescriptor.IsUsableOnionKey(d.OnionKey.Span)) + 1;
                throw new TunnelException(TunnelErrorKind.Malformed, hop, $"cannot build a header for this route: {exception.Message}", exception);
            }
        }

        // Only the origin can compute each hop's private trace: link them all from this span.
        if (activity is not null)
        {
            for (var i = 0; i < keys.HopCount; i++)
            {
                activity.AddLink(new ActivityLink(TunnelTracing.HopParent(keys.TraceContext(i)), new ActivityTagsCollection { ["overlay.hop"] = i + 1 }));
            }
        }

        return await ConnectAsync(route, header, new OriginCellCodec(_node.Network, keys), request, deadline, lifetime, activity);
    }

    // Sends the header (and any request bytes that travel with it) to the route's first hop; the codec is the tunnel's from here on.
    private async Task<OverlayTunnel> ConnectAsync(IReadOnlyList<NodeDescriptor> route, byte[] header, OriginCellCodec codec, TunnelRequest request,
        CancellationTokenSource deadline, CancellationTokenSource lifetime, Activity? activity)
    {
        var mode = request.Mode;
        var first = new LinkMessage { Header = UnsafeByteOperations.UnsafeWrap(header) };
        PayloadBatch? initial = null;
        if (CarriesRequest(request))
        {
            initial = PayloadBatch.Seal(request.InitialData.Span, request.CompleteWithInitialData, codec.ForwardPayloadCapacity,
                codec.Layout.CellSize, _options.Tunnels.MaxCellsPerMessage, codec.SealForwardCells);
            first.Cells = UnsafeByteOperations.UnsafeWrap(initial.Value.Cells);
        }

        var previous = Activity.Current;
        // Never let an ambient trace context ride along on a link call.
        Activity.Current = null;
        AsyncDuplexStreamingCall<LinkMessage, LinkMessage>? call = null;
        using var connect = TunnelTracing.StartPhase("overlay.link.connect", activity);
        Activity.Current = null;
        try
        {
            call = _channels.Client(route[0].Id, route[0].Endpoint).Relay(cancellationToken: lifetime.Token);
            await call.RequestStream.WriteAsync(first, lifetime.Token);
            if (request.CompleteWithInitialData)
            {
                await call.RequestStream.CompleteAsync();
            }
        }
        catch (Exception exception) when (exception is RpcException or IOException or HttpRequestException or InvalidOperationException && !lifetime.IsCancellationRequested)
        {
            call?.Dispose();
            codec.Dispose();
            var kind = exception is RpcException rpc ? LinkErrors.ReasonOf(rpc, TunnelErrorKind.NextHopUnreachable)
                : LinkCertificateRefusedException.Find(exception) is not null ? TunnelErrorKind.LinkUnauthenticated
                : TunnelErrorKind.NextHopUnreachable;
            throw new TunnelException(kind, 1, $"hop 1 ({route[0].Id.ToShortString()}): {kind.ToTag()}", exception);
        }
        catch
        {
            call?.Dispose();
            codec.Dispose();
            throw;
        }
        finally
        {
            Activity.Current = previous;
        }

        // Serialised by the time the write completed; after a failed write the buffer is left to the GC.
        initial?.Release();
        _registry.EnterOriginated();
        _metrics.TunnelOpened(TunnelRoles.Origin);
        activity?.SetTag("overlay.tunnel.relays", route.Count - 1);
        return new OverlayTunnel(route, mode, call, codec, lifetime, deadline, _options.Tunnels.MaxCellsPerMessage, activity, initial?.Consumed ?? 0, request.CompleteWithInitialData,
            _node.Network.PaddingInterval, _time,
            onClose: () =>
            {
                _registry.ExitOriginated();
                _metrics.TunnelClosed(TunnelRoles.Origin);
            },
            onFailure: failure =>
            {
                Log.OriginFailed(_logger, route.Count - 1, failure.Hop, failure.Kind.ToTag());
                _metrics.TunnelFailed(TunnelRoles.Origin, failure.Kind);
                // A link failure makes a hop suspect here too, so the next route avoids it. Only the hop that
                // reported it (or that this node saw fail itself) is counted: a relay's "my successor failed" is
                // its word alone, and taking it would let a relay push honest successors out of every route.
                if (failure.Kind is TunnelErrorKind.NextHopUnreachable or TunnelErrorKind.LinkLost or TunnelErrorKind.LinkUnauthenticated
                    && failure.ReportedBy >= 1 && failure.ReportedBy <= route.Count)
                {
                    _directory.ReportFailure(route[failure.ReportedBy - 1].Id);
                }
            });
    }
}
