using Overlay.Errors;
using Overlay.Identity;

namespace Overlay.Host.Tunnels.Streams;

/// <summary>
/// A tunnel the origin keeps open to carry many streams (docs/protocol.md section 7.9): one
/// header, one set of hop keys, then streams named by id in the end-to-end payload. It takes new
/// streams for a bounded time and count, closes when idle, and a failure of any hop ends every
/// stream on it with that typed failure.
/// </summary>
internal sealed class StreamRoute
{
    private readonly OverlayTunnel _tunnel;
    private readonly StreamOptions _options;
    private readonly TimeProvider _time;
    private readonly Action<StreamRoute> _onEnded;
    private readonly FrameWriter _writer;
    private readonly Dictionary<uint, MuxStream> _streams = [];
    private readonly long _built;
    private readonly TimeSpan _deadline;
    private readonly int _maxDataPerFrame;
    private readonly Lock _gate = new();
    private ITimer? _idle;
    private uint _lastId;
    private bool _closing;
    private bool _draining;
    private TunnelException? _failure;

    public StreamRoute(OverlayTunnel tunnel, TimeSpan deadline, StreamOptions options, TimeProvider time, Action<StreamRoute> onEnded)
    {
        _tunnel = tunnel;
        _deadline = deadline;
        _options = options;
        _time = time;
        _onEnded = onEnded;
        _built = time.GetTimestamp();
        _writer = new FrameWriter((frames, final, token) => tunnel.WriteAsync(frames, final, token));
        // One Data frame fills one link message with its header and an Open or End beside it.
        _maxDataPerFrame = Math.Clamp(tunnel.PreferredWriteSize - StreamFrames.OpenSize(new string('x', StreamFrames.MaxServiceBytes)) - 2 * StreamFrames.HeaderSize,
            256, StreamFrames.MaxPayload);
        Pump = Task.Run(PumpAsync);
    }

    public IReadOnlyList<NodeId> Route => _tunnel.Route;

    /// <summary>Streams opened on this route so far.</summary>
    public int StreamsOpened => (int)_lastId;

    /// <summary>The payload bytes one write of a stream fills a message with.</summary>
    public int PreferredWriteSize => _maxDataPerFrame;

    /// <summary>Ends once the route is closed or failed and its tunnel released.</summary>
    public Task Pump { get; }

    /// <summary>A new stream to <paramref name="service"/>, or null when this route takes no more (closing, failed, at a limit, too old for the deadline).</summary>
    public MuxStream? TryOpenStream(string? service, TimeSpan streamDeadline)
    {
        lock (_gate)
        {
            var age = _time.GetElapsedTime(_built);
            if (_closing || _draining || _failure is not null || _lastId >= _options.MaxStreamsPerRoute || _streams.Count >= _options.MaxConcurrentStreamsPerRoute
                || age >= _options.RouteLifetime || _deadline - age < streamDeadline)
            {
                return null;
            }

            _idle?.Dispose();
            _idle = null;
            var stream = new MuxStream(++_lastId, _writer, StreamFrames.Window, _maxDataPerFrame, _tunnel.RelayCount + 1, originated: true, service, StreamDone);
            _streams.Add(stream.Id, stream);
            return stream;
        }
    }

    private void StreamDone(MuxStream stream)
    {
        lock (_gate)
        {
            _streams.Remove(stream.Id);
            if (_streams.Count != 0 || _closing || _failure is not null)
            {
                return;
            }

            if (!_draining && _lastId < _options.MaxStreamsPerRoute && _time.GetElapsedTime(_built) < _options.RouteLifetime)
            {
                _idle?.Dispose();
                _idle = _time.CreateTimer(static state => ((StreamRoute)state!).CloseIfIdle(), this, _options.RouteIdleTimeout, Timeout.InfiniteTimeSpan);
                return;
            }

            _closing = true;
        }

        _ = CloseAsync();
    }

    private void CloseIfIdle()
    {
        lock (_gate)
        {
            if (_streams.Count != 0 || _closing || _failure is not null)
            {
                return;
            }

            _closing = true;
        }

        _ = CloseAsync();
    }

    // The route's own end: the destination answers with the end of its direction, which ends the pump.
    private async Task CloseAsync()
    {
        _onEnded(this);
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10), _time);
            await _writer.WriteAsync(ReadOnlyMemory<byte>.Empty, timeout.Token, final: true);
        }
        catch (Exception exception) when (exception is TunnelException or OperationCanceledException)
        {
            // The pump sees the same failure on the reply stream and releases the tunnel.
            await _tunnel.AbortAsync();
        }
    }

    /// <summary>Takes no more streams, and closes once the open ones are over (now, if none is).</summary>
    public void Drain()
    {
        lock (_gate)
        {
            _draining = true;
            if (_streams.Count != 0 || _closing || _failure is not null)
            {
                return;
            }

            _closing = true;
            _idle?.Dispose();
        }

        _ = CloseAsync();
    }

    private async Task PumpAsync()
    {
        TunnelException failure;
        var reader = new StreamFrameReader((buffer, token) => _tunnel.ReadAsync(buffer, token), _tunnel.RelayCount + 1);
        try
        {
            while (await reader.NextAsync(CancellationToken.None))
            {
                Dispatch(reader);
            }

            failure = _closing ? new TunnelException(TunnelErrorKind.Cancelled, 0, "the route was closed")
                : reader.Violation("the destination ended the route while it was open");
        }
        catch (TunnelException exception)
        {
            failure = exception;
        }
        catch (OperationCanceledException)
        {
            failure = new TunnelException(TunnelErrorKind.Cancelled, 0, "the route was torn down");
        }
        finally
        {
            reader.Dispose();
        }

        MuxStream[] streams;
        lock (_gate)
        {
            _failure = failure;
            _idle?.Dispose();
            streams = [.. _streams.Values];
        }

        _onEnded(this);
        foreach (var stream in streams)
        {
            stream.Fail(failure);
        }

        await _tunnel.DisposeAsync();
    }

    private void Dispatch(StreamFrameReader frame)
    {
        MuxStream? stream;
        lock (_gate)
        {
            if (frame.StreamId > _lastId)
            {
                throw frame.Violation($"a frame for stream {frame.StreamId}, which was never opened");
            }

            // Frames for a stream already over (reset, or ended both ways) were in flight: dropped.
            if (!_streams.TryGetValue(frame.StreamId, out stream))
            {
                return;
            }
        }

        if (frame.Type == StreamFrameType.Open || !stream.Apply(frame.Type, frame.Payload.Span))
        {
            throw frame.Violation($"a {frame.Type} frame stream {frame.StreamId} may not receive");
        }
    }
}
