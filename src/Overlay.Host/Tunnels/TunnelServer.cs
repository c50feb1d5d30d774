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
using Overlay.Host.Replies;
using Overlay.Host.Telemetry;
using Overlay.Host.Tunnels.Streams;
using Overlay.Onion;
using Overlay.Protocol.V1;
using Overlay.Replies;

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
    private readonly ReplyBlockStore _replies;

    public TunnelServer(NodeState node, PeerDirectory directory, PeerChannels channels, ITunnelHandler handler, TunnelRegistry registry,
        OverlayMetrics metrics, IOptions<OverlayOptions> options, TelemetryOptions telemetry, LinkAdmission admission, TimeProvider time, ILogger<TunnelServer> logger,
        ReplyBlockStore replies)
    {
        _replies = replies;
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
        // RelayStreamGate admitted the stream before the gRPC pipeline: its place among the streams waiting for a header.
        var pending = context.GetHttpContext().Features.Get<PendingHeader>()
            ?? throw new InvalidOperationException("a relay stream reached the tunnel server without passing the relay stream gate");
        var source = pending.Source;
        var served = false;
        try
        {
            HeaderResult header;
            FirstMessage first;
            using (var headerWait = CancellationTokenSource.CreateLinkedTokenSource(callToken))
            {
                headerWait.CancelAfter(_options.HeaderTimeout);
                await PaceAsync(pending.Pace, headerWait, callToken);
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

            pending.Release();

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
            pending.Release();
            if (served)
            {
                _registry.ExitServed(source);
            }
        }
    }

    // Holds the stream while its source is over its header rate (the gate reserved the token): a flood through
    // one previous hop is spread at that hop's rate, and a held stream costs a timer, where a refused one would
    // be sent again at once and cost a stream's set-up and refusal each time.
    private async Task PaceAsync(TimeSpan delay, CancellationTokenSource headerWait, CancellationToken callToken)
    {
        if (delay <= TimeSpan.Zero)
        {
            return;
        }

        _admission.Paced();
        try
        {
            await Task.Delay(delay, _time, headerWait.Token);
        }
        catch (OperationCanceledException) when (!callToken.IsCancellationRequested)
        {
            throw Refuse(TunnelErrorKind.DeadlineExceeded);
        }
        catch (OperationCanceledException)
        {
            throw Abandoned();
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
        catch (Exception exception) when (exception is IOException || (exception is OperationCanceledException && callToken.IsCancellationRequested))
        {
            // The previous hop reset or abandoned the stream before its header: nobody is left to answer, and
            // it is not this node's fault, so no error and no stack (grpc-dotnet logs both for any other exception).
            throw Abandoned();
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

    private RpcException Abandoned()
    {
        _admission.Abandoned();
        return new RpcException(new Status(StatusCode.Cancelled, "the stream was reset before its header"));
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
                using var call = _channels.Client(header.NextHop, endpoint).Relay(cancellationToken: tunnel.Token);
                var pumps = new RelayPumps(codec, _node.Network.CellSize, _options.MaxCellsPerMessage, requests, responses, call, tunnel, upstream.Token, idle, failure, _metrics, activity, connect, phase);
                await Task.WhenAll(pumps.ForwardAsync(first), pumps.BackwardAsync());
                if (failure.Kind is TunnelErrorKind.NextHopUnreachable or TunnelErrorKind.LinkLost or TunnelErrorKind.LinkUnauthenticated)
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
        string? replyHandle = null;
        ReplyBlockSecret? replySecret = null;
        if (header.Mode == TunnelMode.ReplyBlock)
        {
            // A reply over one of this node's blocks: its secret leaves the store (and the disk) now, single use.
            var taken = _replies.TryTake(header.ReplyId.Span, out replySecret, out replyHandle);
            if (taken != TunnelErrorKind.None)
            {
                throw Refuse(taken);
            }
        }

        using var activity = StartHopSpans("overlay.deliver", TunnelRoles.Destination, header, received);
        var handlerSpan = TunnelTracing.StartPhase("overlay.handler", activity);
        DestinationCellCodec codec;
        using (replySecret)
        {
            try
            {
                // The codec holds the relays' layers from here on; the secret's copy is zeroed.
                codec = header.CreateDestinationCodec(_node.Network, replySecret);
            }
            catch when (replyHandle is not null)
            {
                _replies.Fail(replyHandle, TunnelErrorKind.Internal);
                throw;
            }
        }

        using var ownedCodec = codec;
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
            idle, _node.Network.PaddingInterval, _time) { Service = header.Service };
        // The gRPC reader keeps the message as Current while the tunnel idles; the tunnel holds the cells alone.
        firstMessage.Cells = ByteString.Empty;
        _metrics.TunnelOpened(TunnelRoles.Destination);
        var failure = TunnelErrorKind.None;
        Exception? error = null;
        try
        {
            if (header.ReplyBlockAttached)
            {
                incoming.ReplyBlock = await AttachedReplyBlock.ReadAsync(incoming, _node.Network, tunnel.Token);
            }

            var keptRoute = header.Service == StreamFrames.RouteService && header.Mode == TunnelMode.Duplex;
            if (replyHandle is not null)
            {
                await _replies.ReceiveAsync(incoming, replyHandle, tunnel.Token);
            }
            else if (keptRoute)
            {
                await new StreamDemux(_handler, _options.Streams, _logger).RunAsync(incoming, tunnel.Token);
            }
            else if (header.Service is { } service && !_handler.Hosts(service))
            {
                // A service this node does not host is refused, typed, never handed to the default handler.
                throw new TunnelException(TunnelErrorKind.DestinationRefused, 0, $"no service named '{service}' at this node");
            }
            else
            {
                await _handler.HandleAsync(incoming, tunnel.Token);
            }

            // The handler may have stopped reading early; the request must still end properly.
            await incoming.DrainRequestAsync(tunnel.Token);

            if (header.Mode == TunnelMode.Duplex && !incoming.ReplyEnded)
            {
                await incoming.CompleteAsync(tunnel.Token);
            }
            else if (header.Mode is TunnelMode.OneWay or TunnelMode.ReplyBlock)
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

        if (replyHandle is not null)
        {
            _replies.Fail(replyHandle, failure);
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
