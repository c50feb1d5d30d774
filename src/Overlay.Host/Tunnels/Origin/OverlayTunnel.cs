using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Runtime.InteropServices;
using Google.Protobuf;
using Grpc.Core;
using Overlay.Cells;
using Overlay.Errors;
using Overlay.Host.Link;
using Overlay.Host.Telemetry;
using Overlay.Host.Tunnels.Streams;
using Overlay.Identity;
using Overlay.Onion;
using Overlay.Protocol.V1;

namespace Overlay.Host.Tunnels;

/// <summary>
/// A tunnel opened by this node, as a duplex byte stream: write request bytes and complete them
/// with the authenticated end marker; read reply bytes until their end marker (ReadAsync returns
/// 0). Reading and writing may run concurrently on two tasks, one of each at a time (a second
/// concurrent write would seal two cells under one sequence number, so it is refused). Every
/// failure surfaces as a <see cref="TunnelException"/> naming the failing hop (1..R relays, R + 1
/// destination, 0 unknown). A one-way tunnel's read returns 0 only once the destination's receipt
/// confirmed every cell; without it the read fails with <see cref="TunnelErrorKind.Unconfirmed"/>.
/// While the request is open and quiet, padding cells keep the route's idle timers from firing.
/// A tunnel opened with <see cref="TunnelRequest.Reuse"/> is a stream on a kept route: its reads may
/// complete on the route's reader, so code after a read must not block (other streams wait for it).
/// </summary>
public sealed class OverlayTunnel : IAsyncDisposable
{
    private readonly AsyncDuplexStreamingCall<LinkMessage, LinkMessage> _call;
    private readonly OriginCellCodec _codec;
    private readonly CancellationTokenSource _lifetime;
    private readonly CancellationTokenSource _deadline;
    private readonly Action _onClose;
    private readonly Action<TunnelException> _onFailure;
    private readonly int _cellSize;
    private readonly int _maxCellsPerMessage;
    private readonly CellPayloadReader _payload;
    private readonly CellOpener _open;
    private readonly Func<bool> _openMore;
    private readonly BatchSealer _seal;
    private readonly Activity? _activity;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly PaddingSchedule? _padding;
    private int _writeActive;
    private readonly ObservedCount _paddingSent = new();
    private readonly ObservedCount _paddingReceived = new();
    private bool _requestEnded;
    private bool _replyEnded;
    private TunnelException? _failure;
    private readonly TaskCompletionSource<TunnelException> _failed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _readActive;
    private string _phase;
    private int _disposed;
    // Set when this tunnel is a stream on a kept route: every call goes to the stream.
    private readonly RouteStream? _stream;

    internal OverlayTunnel(IReadOnlyList<NodeDescriptor> route, TunnelMode mode, AsyncDuplexStreamingCall<LinkMessage, LinkMessage> call,
        OriginCellCodec codec, CancellationTokenSource lifetime, CancellationTokenSource deadline, int maxCellsPerMessage, Activity? activity,
        int initialBytes, bool requestEnded, TimeSpan paddingInterval, TimeProvider time, Action onClose, Action<TunnelException> onFailure)
    {
        BytesSent = initialBytes;
        PayloadSent = initialBytes > 0 || requestEnded;
        _requestEnded = requestEnded;
        _phase = PayloadSent ? "request" : "open";
        if (PayloadSent)
        {
            activity?.AddEvent(new ActivityEvent("first_byte_sent"));
        }

        if (requestEnded)
        {
            activity?.AddEvent(new ActivityEvent("request_end"));
        }
        _onFailure = onFailure;
        Route = [.. route.Select(d => d.Id)];
        Mode = mode;
        _call = call;
        _codec = codec;
        _lifetime = lifetime;
        _deadline = deadline;
        _cellSize = codec.Layout.CellSize;
        _maxCellsPerMessage = maxCellsPerMessage;
        _payload = new CellPayloadReader(codec.Layout);
        _open = codec.OpenPeeledBackward;
        _openMore = TryOpenMore;
        _seal = codec.SealForwardCells;
        _activity = activity;
        _onClose = onClose;
        if (!requestEnded)
        {
            _padding = new PaddingSchedule(paddingInterval, time, _writeLock, _cellSize, SendPaddingAsync, activity);
            // A tunnel that fails, passes its deadline or is cancelled stops padding even if never disposed.
            lifetime.Token.Register(static state => ((PaddingSchedule)state!).Dispose(), _padding);
        }
    }

    /// <summary>A stream on a kept route (<see cref="TunnelRequest.Reuse"/>), seen as a tunnel.</summary>
    internal OverlayTunnel(RouteStream stream)
    {
        _stream = stream;
        Route = stream.Route.Route;
        Mode = TunnelMode.Duplex;
        _phase = "stream";
        (_call, _codec, _lifetime, _deadline, _onClose, _onFailure, _payload, _open, _openMore, _seal) = (null!, null!, null!, null!, null!, null!, null!, null!, null!, null!);
    }

    /// <summary>True when this tunnel is a stream on a route kept for many.</summary>
    public bool IsStream => _stream is not null;

    /// <summary>The relays in order, then the destination.</summary>
    public IReadOnlyList<NodeId> Route { get; }

    /// <summary>Relays in the route.</summary>
    public int RelayCount => Route.Count - 1;

    /// <summary>The destination.</summary>
    public NodeId Destination => Route[^1];

    /// <summary>Duplex or one-way.</summary>
    public TunnelMode Mode { get; }

    /// <summary>Request bytes sent.</summary>
    public long BytesSent { get => _stream?.Stream.BytesSent ?? _bytesSent; private set => _bytesSent = value; }

    private long _bytesSent;

    /// <summary>Reply bytes received.</summary>
    public long BytesReceived { get => _stream?.Stream.BytesReceived ?? _bytesReceived; private set => _bytesReceived = value; }

    private long _bytesReceived;

    /// <summary>Padding cells this end sent to keep the quiet tunnel alive.</summary>
    public long PaddingSent => _paddingSent.Value;

    /// <summary>Padding cells the destination sent while its reply was quiet (discarded).</summary>
    public long PaddingReceived => _paddingReceived.Value;

    /// <summary>Completes once <paramref name="count"/> padding cells were sent.</summary>
    internal Task WaitForPaddingSentAsync(long count, CancellationToken cancellationToken) => _paddingSent.WaitForAsync(count, cancellationToken);

    /// <summary>Completes once <paramref name="count"/> padding cells were received.</summary>
    internal Task WaitForPaddingReceivedAsync(long count, CancellationToken cancellationToken) => _paddingReceived.WaitForAsync(count, cancellationToken);

    /// <summary>True once any payload cell left this node (a failure after that is never retried).</summary>
    public bool PayloadSent { get => _stream?.Stream.PayloadSent ?? _payloadSent; private set => _payloadSent = value; }

    private bool _payloadSent;

    /// <summary>Payload bytes per message this tunnel writes at most.</summary>
    public int PreferredWriteSize => _stream?.Route.PreferredWriteSize ?? _codec.ForwardPayloadCapacity * _maxCellsPerMessage;

    /// <summary>Sends request bytes; with <paramref name="final"/> the last cell carries the end marker.</summary>
    public async ValueTask WriteAsync(ReadOnlyMemory<byte> data, bool final = false, CancellationToken cancellationToken = default)
    {
        ThrowIfFailed();
        if (_stream is not null)
        {
            await _stream.Stream.WriteAsync(data, final, cancellationToken);
            return;
        }

        if (Interlocked.Exchange(ref _writeActive, 1) != 0)
        {
            throw new InvalidOperationException("one write at a time");
        }

        try
        {
            if (_requestEnded)
            {
                throw new InvalidOperationException("the request is already complete");
            }

            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _lifetime.Token);
            // Shared with the padding sender only: it never waits for this lock, it skips its turn.
            await _writeLock.WaitAsync(linked.Token);
            try
            {
                do
                {
                    data = await SendAsync(data, final, linked.Token);
                }
                while (!data.IsEmpty);

                if (final)
                {
                    _requestEnded = true;
                    _padding?.Dispose();
                    _activity?.AddEvent(new ActivityEvent("request_end"));
                    await CompleteRequestStreamAsync(linked.Token);
                }
            }
            finally
            {
                _writeLock.Release();
            }
        }
        finally
        {
            Volatile.Write(ref _writeActive, 0);
        }
    }

    // One padding cell when the request has been quiet (docs/protocol.md §7.5), under the write lock.
    private async ValueTask SendPaddingAsync(Memory<byte> cell)
    {
        if (_requestEnded || _failure is not null || _lifetime.IsCancellationRequested)
        {
            return;
        }

        _codec.SealForward(CellType.Padding, [], cell.Span);
        await _call.RequestStream.WriteAsync(new LinkMessage { Cells = UnsafeByteOperations.UnsafeWrap(cell) }, _lifetime.Token);
        _paddingSent.Increment();
    }

    /// <summary>Ends the request with its authenticated end marker.</summary>
    public ValueTask CompleteAsync(CancellationToken cancellationToken = default) => WriteAsync(ReadOnlyMemory<byte>.Empty, final: true, cancellationToken);

    /// <summary>
    /// Reads reply bytes; 0 means the reply's authenticated end (and, for one-way tunnels, that the
    /// destination finished). One read returns as much as the buffer holds of the cells that have
    /// already arrived, never waiting for more once it has some.
    /// </summary>
    public async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ThrowIfFailed();
        if (_stream is not null)
        {
            return await _stream.Stream.ReadAsync(buffer, cancellationToken);
        }

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
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _lifetime.Token);
        while (!_payload.HasPayload)
        {
            if (_replyEnded)
            {
                return 0;
            }

            if (!_payload.HasCells)
            {
                var message = await NextResponseAsync(linked.Token);
                if (message is null)
                {
                    throw Fail(Mode == TunnelMode.OneWay
                        ? new TunnelException(TunnelErrorKind.Unconfirmed, 0, "the destination's receipt did not arrive: the message may or may not have been delivered")
                        : new TunnelException(TunnelErrorKind.Truncated, 0, "the reply ended without its end marker"));
                }

                LoadReply(message.Cells.Memory);
                // The reader keeps the message as Current while the tunnel idles; the payload reader holds the cells alone.
                message.Cells = ByteString.Empty;
            }

            OpenNextCell();
        }

        // As much as the buffer holds of the cells already here (the rest of this message), without waiting for more.
        var total = _payload.CopyTo(buffer.Span, _openMore);
        BytesReceived += total;
        return total;
    }

    /// <summary>Tears the tunnel down without releasing anything yet (a pending write or read then ends).</summary>
    internal Task AbortAsync() => _stream?.AbortAsync() ?? _lifetime.CancelAsync();

    /// <summary>Cancels the tunnel if it is still open and releases its keys.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        if (_stream is not null)
        {
            await _stream.DisposeAsync();
            return;
        }

        try
        {
            if (_failure is null && _requestEnded && _replyEnded && !_lifetime.IsCancellationRequested)
            {
                // A clean end: let the call finish with its status instead of resetting the stream.
                using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                try
                {
                    while (await _call.ResponseStream.MoveNext(grace.Token))
                    {
                    }
                }
                catch (Exception exception) when (exception is RpcException or OperationCanceledException)
                {
                    _activity?.AddEvent(new ActivityEvent("close.unclean", tags: new ActivityTagsCollection { ["exception.message"] = exception.Message }));
                }
            }
        }
        finally
        {
            await _lifetime.CancelAsync();
            _padding?.Dispose();
            _call.Dispose();
            _codec.Dispose();
            _deadline.Dispose();
            _lifetime.Dispose();
            _activity?.Dispose();
            _onClose();
        }
    }

    private void OpenNextCell()
    {
        var opened = _payload.OpenNext(_open);
        if (opened.IsError)
        {
            var where = opened.Hop > 0 ? $"hop {opened.Hop}" : "an unknown hop";
            var reporter = opened.ReportedBy != opened.Hop ? $" (reported by hop {opened.ReportedBy})" : "";
            throw Fail(new TunnelException(opened.Error, opened.Hop, opened.ReportedBy, $"tunnel failed at {where}{reporter}: {opened.Error.ToTag()}"));
        }

        switch (opened.Type)
        {
            case CellType.Padding:
                _paddingReceived.Increment();
                return;
            case CellType.Receipt:
                ConfirmReceipt();
                return;
            case CellType.Data or CellType.End when Mode == TunnelMode.OneWay:
                throw Fail(new TunnelException(TunnelErrorKind.ProtocolViolation, RelayCount + 1, "a reply on a one-way tunnel"));
        }

        if (_phase != "reply")
        {
            _activity?.AddEvent(new ActivityEvent("first_reply_byte"));
            _phase = "reply";
        }

        if (opened.Type == CellType.End)
        {
            _replyEnded = true;
            _activity?.AddEvent(new ActivityEvent("reply_end"));
            if (_payload.HasCells)
            {
                throw Fail(new TunnelException(TunnelErrorKind.ProtocolViolation, RelayCount + 1, "cells after the reply's end marker"));
            }
        }
    }

    // A one-way tunnel is delivered when the destination counted every cell this node sealed (docs/protocol.md §7.6).
    private void ConfirmReceipt()
    {
        var destination = RelayCount + 1;
        if (Mode != TunnelMode.OneWay)
        {
            throw Fail(new TunnelException(TunnelErrorKind.ProtocolViolation, destination, "a receipt on a duplex tunnel"));
        }

        var counted = BinaryPrimitives.ReadUInt64BigEndian(_payload.TakePayload());
        if (counted != _codec.ForwardCells)
        {
            throw Fail(new TunnelException(TunnelErrorKind.ProtocolViolation, destination, $"the receipt counts {counted} cells, {_codec.ForwardCells} were sent"));
        }

        _replyEnded = true;
        _activity?.AddEvent(new ActivityEvent("receipt"));
        if (_payload.HasCells)
        {
            throw Fail(new TunnelException(TunnelErrorKind.ProtocolViolation, destination, "cells after the receipt"));
        }
    }

    // A reply message's cells lose every relay layer at once (one cipher call per relay), then open one by one.
    private void LoadReply(ReadOnlyMemory<byte> cells)
    {
        // The message's array is ours alone (fresh from the parser): the codec works in place.
        _codec.PeelBackwardCells(MemoryMarshal.AsMemory(cells).Span);
        _payload.Load(cells);
    }

    // More cells of the message already here, while the reader's buffer has room.
    private bool TryOpenMore()
    {
        if (_replyEnded)
        {
            return false;
        }

        try
        {
            OpenNextCell();
            return true;
        }
        catch (TunnelException)
        {
            // Recorded by Fail: the bytes before the bad cell are delivered, the next read throws.
            return false;
        }
    }

    private async ValueTask<LinkMessage?> NextResponseAsync(CancellationToken token)
    {
        try
        {
            if (!await _call.ResponseStream.MoveNext(token))
            {
                return null;
            }
        }
        catch (Exception exception) when (_deadline.IsCancellationRequested && exception is OperationCanceledException or RpcException)
        {
            throw Fail(new TunnelException(TunnelErrorKind.DeadlineExceeded, 0, "the tunnel's deadline passed"));
        }
        catch (RpcException exception) when (!_lifetime.IsCancellationRequested)
        {
            throw Fail(FromRpc(exception));
        }
        catch (RpcException exception) when (exception.StatusCode == StatusCode.Cancelled)
        {
            // The owner cancelled: surface it the .NET way.
            throw new OperationCanceledException("the tunnel was cancelled", exception, token);
        }

        var message = _call.ResponseStream.Current;
        if (message.Header.Length != 0 || !CellBatch.IsWhole(message.Cells.Length, _cellSize))
        {
            throw Fail(new TunnelException(TunnelErrorKind.ProtocolViolation, 1, "a reply message that is not a batch of cells"));
        }

        return message;
    }

    private async ValueTask<ReadOnlyMemory<byte>> SendAsync(ReadOnlyMemory<byte> data, bool final, CancellationToken token)
    {
        var batch = PayloadBatch.Seal(data.Span, final, _codec.ForwardPayloadCapacity, _cellSize, _maxCellsPerMessage, _seal);
        try
        {
            if (!PayloadSent)
            {
                _activity?.AddEvent(new ActivityEvent("first_byte_sent"));
                _phase = "request";
            }

            PayloadSent = true;
            await _call.RequestStream.WriteAsync(new LinkMessage { Cells = UnsafeByteOperations.UnsafeWrap(batch.Cells) }, token);
        }
        catch (Exception exception) when (_deadline.IsCancellationRequested && exception is OperationCanceledException or RpcException)
        {
            throw Fail(new TunnelException(TunnelErrorKind.DeadlineExceeded, 0, "the tunnel's deadline passed"));
        }
        catch (Exception exception) when (exception is RpcException or IOException or InvalidOperationException && !_lifetime.IsCancellationRequested)
        {
            throw Fail(await ReasonAfterWriteFailureAsync(exception));
        }
        catch (RpcException exception) when (exception.StatusCode == StatusCode.Cancelled)
        {
            throw new OperationCanceledException("the tunnel was cancelled", exception, token);
        }

        // Serialised by the time the write completes; a failed write leaves the buffer to the GC.
        batch.Release();
        BytesSent += batch.Consumed;
        return data[batch.Consumed..];
    }

    private async ValueTask CompleteRequestStreamAsync(CancellationToken token)
    {
        try
        {
            await _call.RequestStream.CompleteAsync();
        }
        catch (Exception exception) when (exception is RpcException or IOException or InvalidOperationException && !token.IsCancellationRequested)
        {
            throw Fail(await ReasonAfterWriteFailureAsync(exception));
        }
    }

    // A write failed because the call ended: the reason, if a hop sent one, is in the reply stream.
    private async Task<TunnelException> ReasonAfterWriteFailureAsync(Exception writeFailure)
    {
        using var grace = CancellationTokenSource.CreateLinkedTokenSource(_lifetime.Token);
        grace.CancelAfter(TimeSpan.FromSeconds(2));
        if (Volatile.Read(ref _readActive) != 0)
        {
            // A reader owns the reply stream and the backward codec: let it find the reason.
            try
            {
                return await _failed.Task.WaitAsync(grace.Token);
            }
            catch (OperationCanceledException)
            {
                return writeFailure is RpcException transport ? FromRpc(transport) : new TunnelException(TunnelErrorKind.LinkLost, 1, "the link to the first relay broke", writeFailure);
            }
        }

        try
        {
            while (await _call.ResponseStream.MoveNext(grace.Token))
            {
                var cells = _call.ResponseStream.Current.Cells.Memory;
                if (!CellBatch.IsWhole(cells.Length, _cellSize))
                {
                    continue;
                }

                LoadReply(cells);
                while (_payload.HasCells)
                {
                    try
                    {
                        OpenNextCell();
                    }
                    catch (TunnelException typed)
                    {
                        return typed;
                    }
                }
            }
        }
        catch (RpcException exception)
        {
            return FromRpc(exception);
        }
        catch (Exception exception) when (exception is OperationCanceledException or InvalidOperationException)
        {
            // No reason arrived in time, or a concurrent read took the reply stream (it reports the reason
            // there): the transport's reason is the answer here, and why is kept on the span.
            _activity?.AddEvent(new ActivityEvent("overlay.write_failure.no_reason", tags: new ActivityTagsCollection { ["exception.type"] = exception.GetType().Name }));
        }

        return writeFailure is RpcException rpc ? FromRpc(rpc) : new TunnelException(TunnelErrorKind.LinkLost, 1, "the link to the first relay broke", writeFailure);
    }

    // The first hop ended the call itself: it refused the header (reason in the trailer) or the link broke.
    private static TunnelException FromRpc(RpcException exception)
    {
        var kind = LinkErrors.ReasonOf(exception, exception.StatusCode == StatusCode.Unavailable ? TunnelErrorKind.NextHopUnreachable : TunnelErrorKind.LinkLost);
        return new TunnelException(kind, 1, $"hop 1: {kind.ToTag()} ({exception.Status.Detail})", exception);
    }

    private TunnelException Fail(TunnelException exception)
    {
        // The writer and the reader may both fail at once: the first failure wins, once.
        if (Interlocked.CompareExchange(ref _failure, exception, null) is null)
        {
            TunnelTracing.Fail(_activity, exception.Kind, _phase);
            _activity?.SetTag(OverlayTelemetry.FailingHopTag, exception.Hop);
            _onFailure(exception);
            _failed.TrySetResult(exception);
        }

        return _failure!;
    }

    private void ThrowIfFailed()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (_failure is not null)
        {
            throw _failure;
        }
    }
}
