using System.Buffers;
using System.Buffers.Binary;
using System.Threading.Channels;
using Overlay.Errors;

namespace Overlay.Host.Tunnels.Streams;

/// <summary>
/// One stream of a multiplexed route, at either end: a duplex byte stream with its own end markers,
/// its own reset and its own flow control. The route's pump hands it frames without ever waiting
/// (its receive buffer is bounded by the credit it granted); the owner reads and writes at its pace.
/// One read and one write at a time, as on a tunnel.
/// </summary>
internal sealed class MuxStream
{
    private readonly FrameWriter _writer;
    private readonly SendWindow _sendWindow;
    private readonly int _window;
    private readonly int _maxDataPerFrame;
    private readonly int _peerHop;
    private readonly Action<MuxStream> _onDone;
    private readonly Channel<byte[]> _inbound;
    private readonly Queue<int> _inboundLengths = new();
    private readonly CancellationTokenSource _aborted = new();
    private string? _pendingOpen;
    private bool _openPending;
    private byte[]? _current;
    private int _currentOffset;
    private int _currentLength;
    private long _outstanding;
    private int _consumed;
    private bool _localEnded;
    private volatile bool _remoteEnded;
    private TunnelException? _failure;
    private int _done;
    private int _writeActive;
    private int _readActive;

    /// <param name="openService">At the origin: the service its first frame opens (the Open goes out with the first write); null at the destination.</param>
    public MuxStream(uint id, FrameWriter writer, int window, int maxDataPerFrame, int peerHop, bool originated, string? openService, Action<MuxStream> onDone)
    {
        Id = id;
        _writer = writer;
        _window = window;
        _sendWindow = new SendWindow(window);
        _maxDataPerFrame = maxDataPerFrame;
        _peerHop = peerHop;
        _openPending = originated;
        // At the origin the route's reader completes the stream's read itself: a reply costs no extra
        // thread hop (a third of a stream's cost over an open tunnel's round trip). The reader's code
        // then runs on the route's reader until it awaits, so it must not block (OverlayTunnel says so).
        // At the destination, handlers are woken on the pool: one slow handler never holds the route.
        _inbound = Channel.CreateUnbounded<byte[]>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true, AllowSynchronousContinuations = originated });
        _pendingOpen = openService;
        _onDone = onDone;
    }

    public uint Id { get; }

    /// <summary>Cancelled once the stream is reset or its route failed.</summary>
    public CancellationToken Aborted => _aborted.Token;

    public bool LocalEnded => _localEnded;

    public bool RemoteEnded => _remoteEnded;

    /// <summary>The peer's direction ended and every byte of it was read.</summary>
    public bool RemoteFullyRead => _remoteEnded && _current is null && _inboundLengths.Count == 0;

    public long BytesSent { get; private set; }

    public long BytesReceived { get; private set; }

    public bool PayloadSent { get; private set; }

    public TunnelException? Failure => Volatile.Read(ref _failure);

    /// <summary>
    /// Sends bytes; with <paramref name="final"/> this direction ends with them (in the same message).
    /// At the origin the first write carries the stream's Open frame (an empty write sends it alone).
    /// </summary>
    public async ValueTask WriteAsync(ReadOnlyMemory<byte> data, bool final, CancellationToken cancellationToken)
    {
        ThrowIfFailed();
        if (Interlocked.Exchange(ref _writeActive, 1) != 0)
        {
            throw new InvalidOperationException("one write at a time");
        }

        try
        {
            await WriteCoreAsync(data, final, cancellationToken);
        }
        finally
        {
            Volatile.Write(ref _writeActive, 0);
        }
    }

    private async ValueTask WriteCoreAsync(ReadOnlyMemory<byte> data, bool final, CancellationToken cancellationToken)
    {
        if (_localEnded)
        {
            throw new InvalidOperationException("the stream's request is already complete");
        }

        if (data.IsEmpty && !final && !_openPending)
        {
            return;
        }

        do
        {
            var take = data.IsEmpty ? 0 : await _sendWindow.TakeAsync(Math.Min(data.Length, _maxDataPerFrame), cancellationToken);
            var last = final && take == data.Length;
            var size = (_openPending ? StreamFrames.OpenSize(_pendingOpen) : 0) + (take > 0 ? StreamFrames.HeaderSize + take : 0) + (last ? StreamFrames.HeaderSize : 0);
            var frames = ArrayPool<byte>.Shared.Rent(size);
            var at = 0;
            if (_openPending)
            {
                at += StreamFrames.WriteOpen(frames, Id, _pendingOpen);
            }

            if (take > 0)
            {
                StreamFrames.WriteHeader(frames.AsSpan(at), StreamFrameType.Data, Id, take);
                data.Span[..take].CopyTo(frames.AsSpan(at + StreamFrames.HeaderSize));
                at += StreamFrames.HeaderSize + take;
            }

            if (last)
            {
                StreamFrames.WriteHeader(frames.AsSpan(at), StreamFrameType.End, Id, 0);
                at += StreamFrames.HeaderSize;
            }

            using (var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _aborted.Token))
            {
                try
                {
                    await _writer.WriteAsync(frames.AsMemory(0, at), linked.Token);
                }
                catch (OperationCanceledException) when (_aborted.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
                {
                    throw Failure!;
                }
            }

            // Copied into cells before the write returned; after a failed write the buffer is left to the GC.
            ArrayPool<byte>.Shared.Return(frames);
            (_openPending, _pendingOpen) = (false, null);
            PayloadSent = true;
            BytesSent += take;
            data = data[take..];
            if (last)
            {
                _localEnded = true;
                CheckDone();
                return;
            }
        }
        while (!data.IsEmpty);
    }

    /// <summary>Reads bytes; 0 at the peer's end of this stream. Throws the stream's failure once it has one.</summary>
    public async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _readActive, 1) != 0)
        {
            throw new InvalidOperationException("one read at a time");
        }

        try
        {
            return await ReadCoreAsync(buffer, cancellationToken);
        }
        finally
        {
            Volatile.Write(ref _readActive, 0);
        }
    }

    private async ValueTask<int> ReadCoreAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        if (!await WaitToReadAsync(cancellationToken))
        {
            return 0;
        }

        var total = 0;
        while (total < buffer.Length && (_current is not null || TryTakeNext()))
        {
            var count = Math.Min(buffer.Length - total, _currentLength - _currentOffset);
            _current.AsSpan(_currentOffset, count).CopyTo(buffer.Span[total..]);
            total += count;
            _currentOffset += count;
            if (_currentOffset == _currentLength)
            {
                ArrayPool<byte>.Shared.Return(_current!);
                _current = null;
            }
        }

        BytesReceived += total;
        _consumed += total;
        // Credit back in quarters of the window, so the sender never idles waiting for it.
        if (_consumed >= _window / 4 && !_remoteEnded && Failure is null)
        {
            var credit = _consumed;
            _consumed = 0;
            Interlocked.Add(ref _outstanding, -credit);
            await SendControlAsync(StreamFrameType.Credit, (uint)credit, cancellationToken);
        }

        return total;
    }

    /// <summary>True when bytes can be read without waiting; false at the peer's end.</summary>
    public async ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken)
    {
        while (_current is null && !TryTakeNext())
        {
            ThrowIfFailed();
            if (!await _inbound.Reader.WaitToReadAsync(cancellationToken))
            {
                ThrowIfFailed();
                return false;
            }
        }

        return true;
    }

    private bool TryTakeNext()
    {
        if (!_inbound.Reader.TryRead(out var next))
        {
            return false;
        }

        lock (_inboundLengths)
        {
            _currentLength = _inboundLengths.Dequeue();
        }

        (_current, _currentOffset) = (next, 0);
        return true;
    }

    /// <summary>From the pump: a Data frame. False when it overruns the credit granted (the peer broke the protocol).</summary>
    private bool Receive(ReadOnlySpan<byte> payload)
    {
        if (_remoteEnded)
        {
            return false;
        }

        if (Failure is not null)
        {
            // Sent before the peer learned of the reset: dropped.
            return true;
        }

        if (Interlocked.Add(ref _outstanding, payload.Length) > _window)
        {
            return false;
        }

        var copy = ArrayPool<byte>.Shared.Rent(payload.Length);
        payload.CopyTo(copy);
        lock (_inboundLengths)
        {
            _inboundLengths.Enqueue(payload.Length);
        }

        _inbound.Writer.TryWrite(copy);
        return true;
    }

    /// <summary>From the pump: the peer's End. False when it already ended (a protocol violation).</summary>
    private bool ReceiveEnd()
    {
        if (_remoteEnded)
        {
            return false;
        }

        _remoteEnded = true;
        _inbound.Writer.TryComplete();
        CheckDone();
        return true;
    }

    /// <summary>From the pump: Credit. False when it grants more than a window (a protocol violation).</summary>
    private bool ReceiveCredit(uint bytes) => Failure is not null || _sendWindow.Add(bytes, _window);

    /// <summary>From the pump: the peer reset the stream.</summary>
    private bool ReceiveReset(TunnelErrorKind kind)
    {
        Fail(new TunnelException(kind, _peerHop, $"the stream was reset: {kind.ToTag()}"));
        return true;
    }

    /// <summary>Ends the stream at once (its route failed, or this end gave up); every pending and later call throws <paramref name="failure"/>.</summary>
    public void Fail(TunnelException failure)
    {
        if (Interlocked.CompareExchange(ref _failure, failure, null) is not null)
        {
            return;
        }

        _sendWindow.Fail(failure);
        _inbound.Writer.TryComplete(failure);
        _aborted.Cancel();
        CheckDone();
    }

    /// <summary>Resets the stream: the peer is told with <paramref name="kind"/> unless the route already failed; this end fails with it.</summary>
    public async ValueTask ResetAsync(TunnelErrorKind kind, TunnelException failure, CancellationToken cancellationToken)
    {
        if (Failure is not null || (_localEnded && _remoteEnded))
        {
            return;
        }

        Fail(failure);
        // A stream the peer never heard of needs no reset.
        if (!_openPending)
        {
            await SendControlAsync(StreamFrameType.Reset, (byte)kind, cancellationToken);
        }
    }

    private ValueTask SendControlAsync(StreamFrameType type, uint value, CancellationToken cancellationToken) =>
        _writer.WriteControlAsync(type, Id, value, cancellationToken);

    /// <summary>
    /// From the pump: a Data, End, Credit or Reset frame for this stream. False when the stream may not
    /// receive it (the peer broke the protocol, which ends the route).
    /// </summary>
    public bool Apply(StreamFrameType type, ReadOnlySpan<byte> payload) => type switch
    {
        StreamFrameType.Data => !payload.IsEmpty && Receive(payload),
        StreamFrameType.End => payload.IsEmpty && ReceiveEnd(),
        StreamFrameType.Credit => payload.Length == StreamFrames.CreditSize && ReceiveCredit(BinaryPrimitives.ReadUInt32BigEndian(payload)),
        StreamFrameType.Reset when payload.Length == 1 => ReceiveReset(TunnelErrorKinds.FromWire(payload[0])),
        _ => false,
    };

    private void CheckDone()
    {
        if ((Failure is not null || (_localEnded && _remoteEnded)) && Interlocked.Exchange(ref _done, 1) == 0)
        {
            _onDone(this);
        }
    }

    private void ThrowIfFailed()
    {
        if (Failure is { } failure)
        {
            throw failure;
        }
    }
}
