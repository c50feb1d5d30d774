using Microsoft.Extensions.Logging;
using Overlay.Errors;

namespace Overlay.Host.Tunnels.Streams;

/// <summary>
/// The destination's side of a multiplexed route: reads frames, hands each new stream to the
/// tunnel handler as a tunnel of its own (the service its Open names), and refuses what the limits
/// do not allow with a Reset naming the reason. A stream's failure resets that stream alone; a
/// broken frame ends the route. Returns when the origin ended the route and every handler finished.
/// </summary>
internal sealed class StreamDemux(ITunnelHandler handler, StreamOptions options, ILogger logger)
{
    private readonly Dictionary<uint, MuxStream> _streams = [];
    private readonly List<Task> _handlers = [];
    // Streams opened by the frames already here: their handlers start once those frames are read (an
    // Open usually arrives with its request and end), so a short request is whole when its handler runs.
    private readonly List<(MuxStream Stream, IncomingTunnel View)> _starting = [];
    private readonly Lock _gate = new();
    // Ids opened so far: streams open concurrently, so their Open frames may arrive out of id order,
    // but an id is never used twice. One bit per id the limit allows.
    private readonly System.Collections.BitArray _opened = new(options.MaxStreamsPerRoute + 1);

    public async Task RunAsync(IncomingTunnel route, CancellationToken cancellationToken)
    {
        var writer = new FrameWriter((frames, final, token) => route.WriteAsync(frames, final, token));
        var chunk = Math.Clamp(route.ReplyChunkSize - 2 * StreamFrames.HeaderSize, 256, StreamFrames.MaxPayload);
        using var reader = new StreamFrameReader((buffer, token) => route.ReadAsync(buffer, token), peerHop: 0);
        TunnelException? failure = null;
        try
        {
            while (await reader.NextAsync(cancellationToken))
            {
                if (reader.Type == StreamFrameType.Open)
                {
                    await OpenAsync(reader, writer, chunk, cancellationToken);
                    StartHandlers(reader, cancellationToken);
                    continue;
                }

                MuxStream? stream;
                lock (_gate)
                {
                    // Frames for a stream already over (or refused) were in flight: dropped.
                    if (!_streams.TryGetValue(reader.StreamId, out stream) && reader.StreamId < (uint)_opened.Length && !_opened[(int)reader.StreamId])
                    {
                        throw reader.Violation($"a frame for stream {reader.StreamId}, which was never opened");
                    }
                }

                if (stream is not null && !stream.Apply(reader.Type, reader.Payload.Span))
                {
                    throw reader.Violation($"a {reader.Type} frame stream {reader.StreamId} may not receive");
                }

                StartHandlers(reader, cancellationToken);
            }

            // The origin ends a route only once its streams are over; any still here end with it.
            failure = new TunnelException(TunnelErrorKind.Cancelled, 0, "the origin closed the route");
        }
        catch (TunnelException exception)
        {
            failure = exception;
            throw;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            failure = new TunnelException(TunnelErrorKind.Cancelled, 0, "the route ended");
            throw;
        }
        finally
        {
            _starting.Clear();
            Task[] running;
            lock (_gate)
            {
                foreach (var stream in _streams.Values)
                {
                    stream.Fail(failure ?? new TunnelException(TunnelErrorKind.Internal, 0, "the route ended"));
                }

                running = [.. _handlers];
            }

            // Every handler is bounded by its stream, which just failed: they return promptly.
            await Task.WhenAll(running);
        }
    }

    private async ValueTask OpenAsync(StreamFrameReader frame, FrameWriter writer, int chunk, CancellationToken cancellationToken)
    {
        var id = frame.StreamId;
        var counted = id < (uint)_opened.Length;
        if (counted && _opened[(int)id])
        {
            throw frame.Violation($"stream {id} opened twice");
        }

        if (counted)
        {
            _opened[(int)id] = true;
        }

        TunnelErrorKind refusal;
        string? service = null;
        lock (_gate)
        {
            refusal = !StreamFrames.TryReadService(frame.Payload.Span, out service) ? TunnelErrorKind.Malformed
                : !counted ? TunnelErrorKind.LimitExceeded
                : _streams.Count >= options.MaxConcurrentStreamsPerRoute ? TunnelErrorKind.LimitExceeded
                : service is not null && !handler.Hosts(service) ? TunnelErrorKind.DestinationRefused
                : TunnelErrorKind.None;
        }

        if (refusal != TunnelErrorKind.None)
        {
            StreamLog.OpenRefused(logger, refusal.ToTag());
            await writer.WriteControlAsync(StreamFrameType.Reset, id, (byte)refusal, cancellationToken);
            return;
        }

        var stream = new MuxStream(id, writer, StreamFrames.Window, chunk, peerHop: 0, originated: false, openService: null, Done);
        var view = new IncomingTunnel(stream, chunk) { Service = service };
        lock (_gate)
        {
            _streams.Add(id, stream);
        }

        _starting.Add((stream, view));
    }

    // Runs each pending handler up to its first wait; the pump goes on from there. A handler is the
    // node's own (the echo, or the control API's listeners), which does its work after an await.
    private void StartHandlers(StreamFrameReader frame, CancellationToken cancellationToken)
    {
        if (_starting.Count == 0 || frame.HasWholeFrame)
        {
            return;
        }

        foreach (var (stream, view) in _starting)
        {
            var handling = HandleAsync(stream, view, cancellationToken);
            lock (_gate)
            {
                _handlers.Add(handling);
            }
        }

        _starting.Clear();
    }

    private void Done(MuxStream stream)
    {
        lock (_gate)
        {
            _streams.Remove(stream.Id);
            _handlers.RemoveAll(static task => task.IsCompleted);
        }
    }

    private async Task HandleAsync(MuxStream stream, IncomingTunnel view, CancellationToken routeToken)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(routeToken, stream.Aborted);
        TunnelErrorKind kind;
        Exception failure;
        try
        {
            await handler.HandleAsync(view, linked.Token);
            await view.DrainRequestAsync(linked.Token);
            if (!view.ReplyEnded)
            {
                await view.CompleteAsync(linked.Token);
            }

            return;
        }
        catch (Exception exception) when (stream.Failure is not null || routeToken.IsCancellationRequested)
        {
            // The origin reset the stream, or the route ended: that is the stream's end, already known at both ends.
            StreamLog.StreamEnded(logger, (stream.Failure?.Kind ?? TunnelErrorKind.Cancelled).ToTag() + " (" + exception.GetType().Name + ")");
            return;
        }
        catch (TunnelException exception)
        {
            (kind, failure) = (exception.Kind, exception);
        }
        catch (Exception exception)
        {
            StreamLog.HandlerFailed(logger, exception);
            (kind, failure) = (TunnelErrorKind.HandlerFailed, exception);
        }

        try
        {
            await stream.ResetAsync(kind, new TunnelException(kind, 0, $"the stream's handler failed: {kind.ToTag()}", failure), routeToken);
        }
        catch (Exception exception) when (exception is TunnelException or OperationCanceledException or IOException or InvalidOperationException)
        {
            // The route itself failed: DeliverAsync reports that with the route's error cell.
            StreamLog.StreamEnded(logger, "the reset could not be sent: " + exception.GetType().Name);
        }
    }
}
