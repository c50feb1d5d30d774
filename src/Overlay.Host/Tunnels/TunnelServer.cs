using System.Diagnostics;
using System.Globalization;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Overlay.Cells;
using Overlay.Errors;
using Overlay.Host.Admission;
using Overlay.Host.Directory;
using Overlay.Host.Link;
using Overlay.Host.Options;
using Overlay.Host.Telemetry;
using Overlay.Onion;
using Overlay.Protocol.V1;

namespace Overlay.Host.Tunnels;

/// <summary>
/// Serves one incoming tunnel hop: processes the header, then either relays (two pumps, one per
/// direction, each awaiting its write before reading more) or delivers to the local handler.
/// Returns only after both directions have ended, so no HTTP/2 stream is left half-open.
/// </summary>
internal sealed class TunnelServer
{
    private static readonly TimeSpan ErrorCellTimeout = TimeSpan.FromSeconds(5);

    private readonly NodeState _node;
    private readonly PeerDirectory _directory;
    private readonly PeerChannels _channels;
    private readonly ITunnelHandler _handler;
    private readonly TunnelRegistry _registry;
    private readonly OverlayMetrics _metrics;
    private readonly TunnelOptions _options;
    private readonly LinkAdmission _admission;
    private readonly WarningThrottle _peerWarnings;
    private readonly TelemetryOptions _telemetry;
    private readonly string _nodeId;
    private readonly TimeProvider _time;
    private readonly ILogger<TunnelServer> _logger;

    public TunnelServer(NodeState node, PeerDirectory directory, PeerChannels channels, ITunnelHandler handler, TunnelRegistry registry,
        OverlayMetrics metrics, IOptions<OverlayOptions> options, TelemetryOptions telemetry, LinkAdmission admission, TimeProvider time, ILogger<TunnelServer> logger)
    {
        _telemetry = telemetry;
        _nodeId = node.Id.ToString();
        _node = node;
        _directory = directory;
        _channels = channels;
        _handler = handler;
        _registry = registry;
        _metrics = metrics;
        _options = options.Value.Tunnels;
        _time = time;
        _logger = logger;
        _admission = admission;
        _peerWarnings = new WarningThrottle(time, WarningThrottle.PeerInterval);
    }

    public async Task ServeAsync(IAsyncStreamReader<LinkMessage> requests, IServerStreamWriter<LinkMessage> responses, ServerCallContext context)
    {
        // Never parent tunnel work on a context a peer supplied: it could tag the tunnel.
        Activity.Current = null;
        var callToken = context.CancellationToken;
        // Fairness is per previous hop: past the first hop the origin is hidden, so its address block is the only honest key.
        var source = PeerAddress.FairnessKey(context.GetHttpContext().Connection.RemoteIpAddress);
        if (!_admission.HeaderRate.TryAcquire(source))
        {
            throw Refuse(source, AdmissionLimits.HeaderRate);
        }

        if (!_admission.PendingHeaders.TryEnter(source))
        {
            throw Refuse(source, AdmissionLimits.PendingHeaders);
        }

        var pending = true;
        var served = false;
        try
        {
            HeaderResult header;
            FirstMessage first;
            using (var headerWait = CancellationTokenSource.CreateLinkedTokenSource(callToken))
            {
                headerWait.CancelAfter(_options.HeaderTimeout);
                first = await ReadFirstAsync(requests, source, headerWait, callToken);
                var cellSize = _node.Network.CellSize;
                if (first.Message.Header.Length != _node.Processor.HeaderSize || (first.Message.Cells.Length % cellSize) != 0)
                {
                    throw Refuse(TunnelErrorKind.Malformed);
                }

                if (!_registry.TryEnterServed(source))
                {
                    throw _registry.Draining ? Refuse(TunnelErrorKind.Busy) : Refuse(source, AdmissionLimits.TunnelSlots);
                }

                served = true;
                await WaitTurnAsync(source, headerWait, callToken);
                try
                {
                    header = ProcessHeader(first.Message);
                }
                finally
                {
                    _admission.Headers.Release();
                }
            }

            _admission.PendingHeaders.Exit(source);
            pending = false;

            // A local id for this hop's logs: meaningless anywhere else, so logs never link hops.
            using var scope = _logger.BeginScope(TunnelScope.New());
            using (header)
            {
                var received = _time.GetUtcNow();
                switch (header.Outcome)
                {
                    case HeaderOutcome.Relay:
                        await RelayAsync(header, first, requests, responses, callToken, received);
                        break;
                    case HeaderOutcome.Deliver:
                        await DeliverAsync(header, first, requests, responses, context, received);
                        break;
                    default:
                        // No keys, so no private trace to put it in: a span of its own, unlinkable to anything.
                        using (var rejected = TunnelTracing.Start("overlay.header.rejected", ActivityKind.Server, default, _nodeId, received))
                        {
                            rejected.RecordFailure(header.Rejection);
                        }

                        throw Refuse(header.Rejection);
                }
            }
        }
        finally
        {
            if (pending)
            {
                _admission.PendingHeaders.Exit(source);
            }

            if (served)
            {
                _registry.ExitServed(source);
            }
        }
    }

    // The first message within the header timeout. What the transport refuses (a message over the limit, bytes
    // that are not protobuf) becomes a typed refusal; a peer that sends nothing in time gets DeadlineExceeded.
    private async Task<FirstMessage> ReadFirstAsync(IAsyncStreamReader<LinkMessage> requests, string source, CancellationTokenSource headerWait, CancellationToken callToken)
    {
        try
        {
            if (!await requests.MoveNext(headerWait.Token))
            {
                throw Refuse(TunnelErrorKind.ProtocolViolation);
            }
        }
        catch (OperationCanceledException) when (headerWait.IsCancellationRequested && !callToken.IsCancellationRequested)
        {
            throw Refuse(TunnelErrorKind.DeadlineExceeded);
        }
        catch (RpcException exception) when (!callToken.IsCancellationRequested && exception.StatusCode != StatusCode.Cancelled)
        {
            var kind = LinkErrors.ReasonOf(exception, exception.StatusCode == StatusCode.ResourceExhausted ? TunnelErrorKind.LimitExceeded : TunnelErrorKind.ProtocolViolation);
            _admission.BadInput(source, kind.ToTag());
            throw Refuse(kind == TunnelErrorKind.Busy ? TunnelErrorKind.LimitExceeded : kind);
        }

        return new FirstMessage(requests.Current);
    }

    // A turn at header processing, in rotation with the other previous hops; a full queue, or no turn within
    // the header timeout, is Busy.
    private async Task WaitTurnAsync(string source, CancellationTokenSource headerWait, CancellationToken callToken)
    {
        bool granted;
        try
        {
            granted = await _admission.Headers.WaitTurnAsync(source, headerWait.Token);
        }
        catch (OperationCanceledException) when (headerWait.IsCancellationRequested && !callToken.IsCancellationRequested)
        {
            granted = false;
        }

        if (!granted)
        {
            throw Refuse(source, AdmissionLimits.HeaderQueue);
        }
    }

    // A failure a peer can cause (bad input, a refusal, a lost link) is said at most once per reason per
    // interval, counting the others, and without the exception's stack; only our own faults keep it.
    private void WarnFailure(Action<ILogger, string, Exception?> log, string reason, TunnelErrorKind kind, Exception? exception)
    {
        if (kind is TunnelErrorKind.Internal or TunnelErrorKind.HandlerFailed)
        {
            log(_logger, reason, exception);
        }
        else if (_peerWarnings.ShouldLog(reason, out var suppressed))
        {
            log(_logger, suppressed == 0 ? reason : string.Create(CultureInfo.InvariantCulture, $"{reason} ({suppressed} more not logged)"), null);
        }
    }

    private RpcException Refuse(string source, string limit)
    {
        _admission.Refused(source, limit);
        return Refuse(TunnelErrorKind.Busy);
    }

    private RpcException Refuse(TunnelErrorKind kind)
    {
        _metrics.HeaderRejected(kind);
        Log.HeaderRejected(_logger, kind.ToTag());
        return LinkErrors.Refuse(kind);
    }

    // Replaces the message's header by the next hop's (relay), or drops it (anything else): this hop's copy
    // is not needed past processing. Not async, so no state machine keeps either buffer.
    private HeaderResult ProcessHeader(LinkMessage message)
    {
        var nextHeader = new byte[_node.Processor.HeaderSize];
        var header = _node.Processor.Process(message.Header.Span, nextHeader);
        message.Header = header.Outcome == HeaderOutcome.Relay ? UnsafeByteOperations.UnsafeWrap(nextHeader) : ByteString.Empty;
        return header;
    }

    // Default: this hop's private trace, derived from its tunnel key. Sealed: the origin's, only if this node allows it.
    private ActivityContext ParentFor(HeaderResult header) =>
        _telemetry.HonorSealedTraceContext && TunnelTracing.TryReadSealed(header.SealedTraceContext.Span, out var sealedContext)
            ? sealedContext
            : TunnelTracing.HopParent(header.TraceContext);

    private Activity? StartHopSpans(string name, string role, HeaderResult header, DateTimeOffset received)
    {
        var activity = TunnelTracing.Start(name, ActivityKind.Server, ParentFor(header), _nodeId, received);
        activity?.SetTag(OverlayTelemetry.RoleTag, role);
        TunnelTracing.StartPhase("overlay.header.process", activity, received)?.Dispose();
        return activity;
    }

    private async Task RelayAsync(HeaderResult header, FirstMessage first, IAsyncStreamReader<LinkMessage> requests,
        IServerStreamWriter<LinkMessage> responses, CancellationToken callToken, DateTimeOffset received)
    {
        using var activity = StartHopSpans("overlay.relay", TunnelRoles.Relay, header, received);
        var phase = new PhaseTracker("header.process");
        using var codec = header.CreateRelayCodec(_node.Network);
        using var deadline = new CancellationTokenSource(header.Deadline.ToTimeSpan(), _time);
        using var idle = new IdleTimer(_node.Network.IdleTimeout, _time);
        using var tunnel = CancellationTokenSource.CreateLinkedTokenSource(callToken, deadline.Token, idle.Token);
        // Backward writes stop only when the predecessor is gone or the deadline passed, never
        // because the tunnel failed downstream: Kestrel resets a stream whose write was cancelled,
        // which would destroy the error cell this hop is about to send.
        using var upstream = CancellationTokenSource.CreateLinkedTokenSource(callToken, deadline.Token);
        var failure = new RelayFailure();
        _metrics.TunnelOpened(TunnelRoles.Relay);
        try
        {
            phase.Current = "link.connect";
            if (!_directory.TryGetLinkEndpoint(header.NextHop, out var endpoint))
            {
                failure.Set(TunnelErrorKind.UnknownNextHop, nextHop: true);
            }
            else
            {
                var connect = TunnelTracing.StartPhase("overlay.link.connect", activity);
                // The next hop's call must not see any ambient context (guarantee 10, docs/protocol.md).
                Activity.Current = null;
                using var call = _channels.Client(endpoint).Relay(cancellationToken: tunnel.Token);
                var pumps = new RelayPumps(codec, _node.Network.CellSize, _options.MaxCellsPerMessage, requests, responses, call, tunnel, upstream.Token, idle, failure, _metrics, activity, connect, phase);
                await Task.WhenAll(pumps.ForwardAsync(first), pumps.BackwardAsync());
                if (failure.Kind is TunnelErrorKind.NextHopUnreachable or TunnelErrorKind.LinkLost)
                {
                    _directory.ReportFailure(header.NextHop);
                }

                if (failure.Kind == TunnelErrorKind.None && !(pumps.ForwardCompleted && pumps.BackwardCompleted))
                {
                    // Neither pump failed, yet the tunnel did not finish: our deadline, our idle timeout, or the predecessor tore it down.
                    if (deadline.IsCancellationRequested && !callToken.IsCancellationRequested)
                    {
                        failure.Set(TunnelErrorKind.DeadlineExceeded, nextHop: false);
                    }
                    else if (idle.Expired && !callToken.IsCancellationRequested)
                    {
                        failure.Set(TunnelErrorKind.IdleTimeout, nextHop: false);
                    }
                    else
                    {
                        failure.SetUpstreamLost(null, TunnelErrorKind.Cancelled);
                    }
                }
            }

            if (failure.Kind != TunnelErrorKind.None)
            {
                TunnelTracing.Fail(activity, failure.Kind, phase.Current);
                _metrics.TunnelFailed(TunnelRoles.Relay, failure.Kind);
                if (failure.UpstreamLost)
                {
                    Log.RelayEndedUpstream(_logger, failure.Describe());
                }
                else
                {
                    WarnFailure(Log.RelayFailed, failure.Describe(), failure.Kind, failure.Exception);
                }

                if (!failure.UpstreamLost && !callToken.IsCancellationRequested)
                {
                    await SendRelayErrorAsync(codec, failure, responses, callToken);
                    await DrainAsync(requests, callToken);
                }
            }
        }
        finally
        {
            _metrics.TunnelClosed(TunnelRoles.Relay);
        }
    }

    private async Task SendRelayErrorAsync(RelayCellCodec codec, RelayFailure failure, IServerStreamWriter<LinkMessage> responses, CancellationToken callToken)
    {
        var cell = new byte[_node.Network.CellSize];
        codec.WriteErrorCell(failure.Kind, cell, failure.NextHop);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(callToken);
        timeout.CancelAfter(ErrorCellTimeout);
        try
        {
            await responses.WriteAsync(new LinkMessage { Cells = UnsafeByteOperations.UnsafeWrap(cell) }, timeout.Token);
        }
        catch (Exception exception) when (exception is IOException or OperationCanceledException or InvalidOperationException)
        {
            // The predecessor is gone too; the origin learns from its own link.
            Log.RelayFailed(_logger, "the error cell could not be sent upstream", exception);
        }
    }

    // After a failure, wait (bounded) for the predecessor to close its side, so the stream ends in both directions.
    private async Task DrainAsync(IAsyncStreamReader<LinkMessage> requests, CancellationToken callToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(callToken);
        timeout.CancelAfter(_options.HeaderTimeout);
        try
        {
            while (await requests.MoveNext(timeout.Token))
            {
            }
        }
        catch (Exception exception) when (exception is IOException or OperationCanceledException or InvalidOperationException)
        {
            // Expected: the predecessor cancels its call once it has the error cell.
            Log.DrainEnded(_logger, exception.GetType().Name);
        }
    }

    private async Task DeliverAsync(HeaderResult header, FirstMessage first, IAsyncStreamReader<LinkMessage> requests,
        IServerStreamWriter<LinkMessage> responses, ServerCallContext context, DateTimeOffset received)
    {
        var callToken = context.CancellationToken;
        using var activity = StartHopSpans("overlay.deliver", TunnelRoles.Destination, header, received);
        var handlerSpan = TunnelTracing.StartPhase("overlay.handler", activity);
        using var codec = header.CreateDestinationCodec(_node.Network);
        using var deadline = new CancellationTokenSource(header.Deadline.ToTimeSpan(), _time);
        using var idle = new IdleTimer(_node.Network.IdleTimeout, _time);
        using var tunnel = CancellationTokenSource.CreateLinkedTokenSource(callToken, deadline.Token, idle.Token);
        // Reply writes stop only with the call (IncomingTunnel), so a predecessor that stops reading
        // could hold one on flow control for ever: once the deadline (or the idle timeout) and the
        // error cell's grace have passed, abort the stream.
        using var stalled = new CancellationTokenSource();
        using var armStall = tunnel.Token.Register(() =>
        {
            if (!callToken.IsCancellationRequested)
            {
                stalled.CancelAfter(ErrorCellTimeout);
            }
        });
        using var abortStalled = stalled.Token.Register(context.GetHttpContext().Abort);
        var firstMessage = first.Take();
        var incoming = new IncomingTunnel(codec, header.Mode, requests, responses, firstMessage.Cells.Memory, _options.MaxCellsPerMessage, callToken,
            idle, _node.Network.PaddingInterval, _time);
        // The gRPC reader keeps the message as Current while the tunnel idles; the tunnel holds the cells alone.
        firstMessage.Cells = ByteString.Empty;
        _metrics.TunnelOpened(TunnelRoles.Destination);
        var failure = TunnelErrorKind.None;
        Exception? error = null;
        try
        {
            if (header.Service is { } service)
            {
                // Named services are not hosted yet: a name is refused, typed, never handed to the default handler.
                throw new TunnelException(TunnelErrorKind.DestinationRefused, 0, $"no service named '{service}' at this node");
            }

            await _handler.HandleAsync(incoming, tunnel.Token);
            if (!incoming.RequestEnded)
            {
                // The handler stopped reading early; the request must still end properly.
                var sink = new byte[4096];
                while (await incoming.ReadAsync(sink, tunnel.Token) > 0)
                {
                }
            }

            if (header.Mode == TunnelMode.Duplex && !incoming.ReplyEnded)
            {
                await incoming.CompleteAsync(tunnel.Token);
            }
            else if (header.Mode == TunnelMode.OneWay)
            {
                // Every cell is in: the origin counts this as delivered only when it sees the receipt.
                await incoming.SendReceiptAsync(tunnel.Token);
            }
        }
        catch (TunnelException exception)
        {
            (failure, error) = (exception.Kind, exception);
        }
        catch (OperationCanceledException exception) when (tunnel.IsCancellationRequested)
        {
            var kind = callToken.IsCancellationRequested ? TunnelErrorKind.Cancelled
                : deadline.IsCancellationRequested ? TunnelErrorKind.DeadlineExceeded
                : TunnelErrorKind.IdleTimeout;
            (failure, error) = (kind, exception);
        }
        catch (IOException exception)
        {
            (failure, error) = (TunnelErrorKind.LinkLost, exception);
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            (failure, error) = (TunnelErrorKind.HandlerFailed, exception);
        }
        finally
        {
            incoming.Close();
            _metrics.TunnelClosed(TunnelRoles.Destination);
            handlerSpan?.SetTag("overlay.request.bytes", incoming.BytesReceived);
            handlerSpan?.SetTag("overlay.reply.bytes", incoming.BytesSent);
            if (failure != TunnelErrorKind.None)
            {
                TunnelTracing.Fail(handlerSpan, failure, null);
            }

            handlerSpan?.Dispose();
        }

        if (failure == TunnelErrorKind.None)
        {
            // Both ends are done: return once the predecessor closed its side too (normally at once).
            await DrainAsync(requests, callToken);
            return;
        }

        TunnelTracing.Fail(activity, failure, incoming.RequestEnded ? "reply" : "request");
        _metrics.TunnelFailed(TunnelRoles.Destination, failure);
        if (failure == TunnelErrorKind.Cancelled)
        {
            Log.DeliveryCancelled(_logger);
        }
        else
        {
            WarnFailure(Log.DeliveryFailed, failure.ToTag(), failure, error);
        }

        if (!callToken.IsCancellationRequested && !incoming.ReplyEnded)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(callToken);
            timeout.CancelAfter(ErrorCellTimeout);
            try
            {
                await incoming.SendErrorAsync(failure, timeout.Token);
            }
            catch (Exception exception) when (exception is IOException or OperationCanceledException or InvalidOperationException)
            {
                Log.DeliveryFailed(_logger, "the error cell could not be sent", exception);
            }
        }

        if (!callToken.IsCancellationRequested)
        {
            await DrainAsync(requests, callToken);
        }
    }
}

/// <summary>The first failure of a relayed tunnel; later ones are consequences.</summary>
internal sealed class RelayFailure
{
    private int _set;

    public TunnelErrorKind Kind { get; private set; }

    /// <summary>The fault is on the link to the next hop (or the next hop refused).</summary>
    public bool NextHop { get; private set; }

    /// <summary>The predecessor is gone: no error cell can reach the origin through us.</summary>
    public bool UpstreamLost { get; private set; }

    public Exception? Exception { get; private set; }

    public void Set(TunnelErrorKind kind, bool nextHop, Exception? exception = null)
    {
        if (Interlocked.Exchange(ref _set, 1) == 0)
        {
            (Kind, NextHop, Exception) = (kind, nextHop, exception);
        }
    }

    public void SetUpstreamLost(Exception? exception, TunnelErrorKind kind = TunnelErrorKind.LinkLost)
    {
        if (Interlocked.Exchange(ref _set, 1) == 0)
        {
            (Kind, UpstreamLost, Exception) = (kind, true, exception);
        }
    }

    public string Describe() => UpstreamLost
        ? Kind == TunnelErrorKind.Cancelled ? "the previous hop closed the tunnel early" : "link to the previous hop lost"
        : NextHop ? $"next hop: {Kind.ToTag()}" : Kind.ToTag();
}

/// <summary>The two directions of a relayed hop. Each pump is the only writer of its outgoing stream.</summary>
internal sealed class RelayPumps(
    RelayCellCodec codec,
    int cellSize,
    int maxCellsPerMessage,
    IAsyncStreamReader<LinkMessage> requests,
    IServerStreamWriter<LinkMessage> responses,
    AsyncDuplexStreamingCall<LinkMessage, LinkMessage> call,
    CancellationTokenSource tunnel,
    CancellationToken upstream,
    IdleTimer idle,
    RelayFailure failure,
    OverlayMetrics metrics,
    Activity? hop,
    Activity? connect,
    PhaseTracker phase)
{
    /// <summary>The predecessor ended its request normally and it was passed on.</summary>
    public bool ForwardCompleted { get; private set; }

    /// <summary>The successor ended its reply normally and it was passed on.</summary>
    public bool BackwardCompleted { get; private set; }

    public async Task ForwardAsync(FirstMessage first)
    {
        var message = first.Take();
        // The next hop's header leaves with the first message this hop writes.
        var header = message.Header;
        var framer = new CellFramer(maxCellsPerMessage * cellSize);
        var token = tunnel.Token;
        using var span = TunnelTracing.StartPhase("overlay.relay.forward", hop);
        long cells = 0, bytes = 0;
        try
        {
            while (true)
            {
                cells += message.Cells.Length / cellSize;
                bytes += message.Cells.Length;
                var peeled = Peel(message);
                if (peeled != TunnelErrorKind.None)
                {
                    Fail(peeled, nextHop: false, null);
                    return;
                }

                framer.Add(message.Cells.Memory);
                // The gRPC reader keeps its last message as Current while it waits for the next: let go of
                // it here (the framer holds the cells until written), or an idle tunnel holds them at every hop.
                message.Header = ByteString.Empty;
                message.Cells = ByteString.Empty;

                // Full batches leave at once; a partial one waits only while more input is already here.
                if (await WriteForwardAsync(framer, header, flush: false, token) is not { } unsent)
                {
                    return;
                }

                header = unsent;
                var reading = requests.MoveNext(token);
                if (!reading.IsCompleted)
                {
                    if (await WriteForwardAsync(framer, header, flush: true, token) is not { } stillUnsent)
                    {
                        return;
                    }

                    header = stillUnsent;
                }

                bool more;
                try
                {
                    more = await reading;
                }
                catch (RpcException exception) when (!token.IsCancellationRequested && exception.StatusCode != StatusCode.Cancelled)
                {
                    // The predecessor sent something the server could not take (oversized, cut, bad encoding).
                    Fail(exception.StatusCode == StatusCode.ResourceExhausted ? TunnelErrorKind.LimitExceeded : TunnelErrorKind.ProtocolViolation, nextHop: false, exception);
                    return;
                }
                catch (Exception exception) when (!token.IsCancellationRequested && exception is IOException or InvalidOperationException or OperationCanceledException or RpcException)
                {
                    failure.SetUpstreamLost(exception);
                    tunnel.Cancel();
                    return;
                }

                if (!more)
                {
                    if (await WriteForwardAsync(framer, header, flush: true, token) is null)
                    {
                        return;
                    }

                    break;
                }

                idle.Touch();
                message = requests.Current;
                if (message.Header.Length != 0)
                {
                    Fail(TunnelErrorKind.ProtocolViolation, nextHop: false, null);
                    return;
                }
            }

            await call.RequestStream.CompleteAsync();
            phase.Current = "request.end";
            ForwardCompleted = true;
        }
        catch (Exception exception) when (IsTeardown(exception, token))
        {
            // The other pump, the deadline or the predecessor ended the tunnel and recorded why; this
            // pump's own exception is a consequence, kept on its span.
            span?.AddEvent(TeardownEvent(exception));
        }
        catch (Exception exception) when (!token.IsCancellationRequested)
        {
            // Anything else is a bug: end the tunnel with a typed Internal error, logged with the exception.
            Fail(TunnelErrorKind.Internal, nextHop: false, exception);
        }
        finally
        {
            connect?.Dispose();
            span?.SetTag("overlay.cells", cells);
            span?.SetTag("overlay.bytes", bytes);
        }
    }

    // Writes what the framer releases (the next hop's header with the first message); returns the header
    // still to send (empty once sent), or null when the write failed and the tunnel is over.
    private async Task<ByteString?> WriteForwardAsync(CellFramer framer, ByteString header, bool flush, CancellationToken token)
    {
        while (framer.TryTake(flush, out var batch) || (flush && !header.IsEmpty))
        {
            try
            {
                // A fresh message with only the known fields: protobuf keeps unknown fields, and
                // forwarding them would let a predecessor tag the tunnel for a later hop.
                await call.RequestStream.WriteAsync(new LinkMessage { Header = header, Cells = UnsafeByteOperations.UnsafeWrap(batch.Cells) }, token);
            }
            catch (Exception exception) when (!token.IsCancellationRequested && exception is RpcException or IOException or InvalidOperationException)
            {
                // The first write is the connection: failing there means the next hop could not be reached.
                var transport = !header.IsEmpty ? TunnelErrorKind.NextHopUnreachable : TunnelErrorKind.LinkLost;
                Fail(exception is RpcException rpc ? LinkErrors.ReasonOf(rpc, transport) : transport, nextHop: true, exception);
                return null;
            }

            // Serialised by the time the write completed.
            batch.Release();
            if (!header.IsEmpty)
            {
                header = ByteString.Empty;
                connect?.Dispose();
                phase.Current = "piping";
            }
        }

        return header;
    }

    public async Task BackwardAsync()
    {
        var token = tunnel.Token;
        var framer = new CellFramer(maxCellsPerMessage * cellSize);
        using var span = TunnelTracing.StartPhase("overlay.relay.backward", hop);
        long cells = 0, bytes = 0;
        try
        {
            var reading = call.ResponseStream.MoveNext(token);
            while (true)
            {
                bool more;
                try
                {
                    more = await reading;
                }
                catch (RpcException exception) when (!token.IsCancellationRequested)
                {
                    var transport = cells == 0 && exception.StatusCode == StatusCode.Unavailable ? TunnelErrorKind.NextHopUnreachable : TunnelErrorKind.LinkLost;
                    Fail(LinkErrors.ReasonOf(exception, transport), nextHop: true, exception);
                    return;
                }

                if (!more)
                {
                    BackwardCompleted = await WriteBackwardAsync(framer, flush: true);
                    return;
                }

                idle.Touch();
                var message = call.ResponseStream.Current;
                var batch = CellBatch.Writable(message.Cells);
                if (message.Header.Length != 0 || !CellBatch.IsWhole(batch.Length, cellSize))
                {
                    Fail(TunnelErrorKind.ProtocolViolation, nextHop: true, null);
                    return;
                }

                codec.ProcessBackwardCells(batch.Span);
                metrics.CellsRelayed(forward: false, batch.Length / cellSize, batch.Length);
                cells += batch.Length / cellSize;
                bytes += batch.Length;
                framer.Add(batch);
                message.Cells = ByteString.Empty; // as in the forward pump: the reader keeps the message

                // As forward: full batches at once, a partial one only while no more input is here.
                if (!await WriteBackwardAsync(framer, flush: false))
                {
                    return;
                }

                reading = call.ResponseStream.MoveNext(token);
                if (!reading.IsCompleted && !await WriteBackwardAsync(framer, flush: true))
                {
                    return;
                }
            }
        }
        catch (Exception exception) when (IsTeardown(exception, token))
        {
            // The other pump, the deadline or the predecessor ended the tunnel and recorded why; this
            // pump's own exception is a consequence, kept on its span.
            span?.AddEvent(TeardownEvent(exception));
        }
        catch (Exception exception) when (!token.IsCancellationRequested)
        {
            // Anything else is a bug: end the tunnel with a typed Internal error, logged with the exception.
            Fail(TunnelErrorKind.Internal, nextHop: false, exception);
        }
        finally
        {
            span?.SetTag("overlay.cells", cells);
            span?.SetTag("overlay.bytes", bytes);
        }
    }

    // Writes what the framer releases upstream; false when the predecessor is gone and the tunnel is over.
    private async Task<bool> WriteBackwardAsync(CellFramer framer, bool flush)
    {
        while (framer.TryTake(flush, out var batch))
        {
            try
            {
                await responses.WriteAsync(new LinkMessage { Cells = UnsafeByteOperations.UnsafeWrap(batch.Cells) }, upstream);
            }
            catch (Exception exception) when (exception is IOException or InvalidOperationException || (exception is OperationCanceledException && !upstream.IsCancellationRequested))
            {
                failure.SetUpstreamLost(exception);
                tunnel.Cancel();
                return false;
            }

            batch.Release();
        }

        return true;
    }

    // Once the tunnel is cancelled, pending calls fail in every way the stack has: all consequences.
    private static bool IsTeardown(Exception exception, CancellationToken token) =>
        (token.IsCancellationRequested && exception is OperationCanceledException or RpcException or IOException or InvalidOperationException)
        || exception is RpcException { StatusCode: StatusCode.Cancelled };

    private static ActivityEvent TeardownEvent(Exception exception) =>
        new("overlay.pump.teardown", tags: new ActivityTagsCollection { ["exception.type"] = exception.GetType().Name });

    private TunnelErrorKind Peel(LinkMessage message)
    {
        if (message.Cells.Length == 0)
        {
            return message.Header.Length != 0 ? TunnelErrorKind.None : TunnelErrorKind.ProtocolViolation;
        }

        var cells = CellBatch.Writable(message.Cells);
        if (!CellBatch.IsWhole(cells.Length, cellSize))
        {
            return TunnelErrorKind.ProtocolViolation;
        }

        var result = codec.ProcessForwardCells(cells.Span);
        if (result != TunnelErrorKind.None)
        {
            return result;
        }

        metrics.CellsRelayed(forward: true, cells.Length / cellSize, cells.Length);
        return TunnelErrorKind.None;
    }

    private void Fail(TunnelErrorKind kind, bool nextHop, Exception? exception)
    {
        failure.Set(kind, nextHop, exception);
        tunnel.Cancel();
    }
}

/// <summary>The last phase a tunnel reached at this hop, for the span of a tunnel that fails or times out.</summary>
internal sealed class PhaseTracker(string initial)
{
    private volatile string _current = initial;

    public string Current
    {
        get => _current;
        set => _current = value;
    }
}

/// <summary>The log scope of one tunnel at one node: a random local id.</summary>
internal sealed class TunnelScope : IReadOnlyList<KeyValuePair<string, object?>>
{
    private readonly string _id;

    private TunnelScope(string id) => _id = id;

    public int Count => 1;

    public KeyValuePair<string, object?> this[int index] => index == 0 ? new("TunnelId", _id) : throw new ArgumentOutOfRangeException(nameof(index));

    public static TunnelScope New() => new(Convert.ToHexStringLower(BitConverter.GetBytes(Random.Shared.NextInt64())));

    public IEnumerator<KeyValuePair<string, object?>> GetEnumerator()
    {
        yield return this[0];
    }

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();

    public override string ToString() => $"tunnel {_id}";
}

/// <summary>
/// A hop's first request message, handed on once. The async methods of a tunnel live as long as the
/// tunnel, and any of them holding the message would keep its buffers (the header alone is ~4 KiB) for
/// that long; taking it leaves only the pump that forwards it, until the next message.
/// </summary>
internal sealed class FirstMessage(LinkMessage message)
{
    private LinkMessage? _message = message;

    /// <summary>The message, before it is taken.</summary>
    public LinkMessage Message => _message ?? throw new InvalidOperationException("the first message was already handed on");

    public LinkMessage Take() => Interlocked.Exchange(ref _message, null) ?? throw new InvalidOperationException("the first message was already handed on");
}
