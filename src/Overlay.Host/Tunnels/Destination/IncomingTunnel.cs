using System.Diagnostics;
using Google.Protobuf;
using Grpc.Core;
using Overlay.Cells;
using Overlay.Errors;
using Overlay.Host.Tunnels.Streams;
using Overlay.Onion;
using Overlay.Protocol.V1;

namespace Overlay.Host.Tunnels;

/// <summary>
/// A tunnel that ends at this node, as its handler sees it: read the request until its
/// authenticated end, write the reply (duplex only) and complete it. Reads pull cells from the
/// link as the handler asks, and writes go out as the link accepts them, so a slow handler slows
/// the origin through HTTP/2 flow control instead of growing memory here. Once the request has ended
/// and while the reply is open and quiet, padding cells keep the route's idle timers from firing
/// (the origin can no longer send); a one-way tunnel ends with a receipt instead of a reply.
/// </summary>
public sealed class IncomingTunnel
{
    private readonly DestinationCellCodec _codec;
    private readonly IAsyncStreamReader<LinkMessage> _requests;
    private readonly IServerStreamWriter<LinkMessage> _responses;
    private readonly int _cellSize;
    private readonly int _maxCellsPerMessage;
    private readonly CellPayloadReader _payload;
    private readonly CellOpener _open;
    private readonly Func<bool> _openMore;
    private readonly BatchSealer _seal;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly IdleTimer? _idle;
    private readonly TimeSpan _paddingInterval;
    private readonly TimeProvider _time;
    private PaddingSchedule? _padding;
    private bool _requestEnded;
    private bool _replyEnded;
    private TunnelException? _failure;
    private readonly CancellationToken _callToken;
    // Set when this is one stream of a multiplexed route: every call goes to the stream.
    private readonly MuxStream? _stream;
    private readonly int _streamChunkSize;

    internal IncomingTunnel(DestinationCellCodec codec, TunnelMode mode, IAsyncStreamReader<LinkMessage> requests,
        IServerStreamWriter<LinkMessage> responses, ReadOnlyMemory<byte> firstCells, int maxCellsPerMessage, CancellationToken callToken,
        IdleTimer? idle = null, TimeSpan paddingInterval = default, TimeProvider? time = null)
    {
        _callToken = callToken;
        _idle = idle;
        _paddingInterval = paddingInterval;
        _time = time ?? TimeProvider.System;
        _codec = codec;
        Mode = mode;
        _requests = requests;
        _responses = responses;
        _cellSize = codec.Layout.CellSize;
        _maxCellsPerMessage = maxCellsPerMessage;
        _payload = new CellPayloadReader(codec.Layout, firstCells);
        _open = (cell, plaintext) => codec.OpenForward(cell, plaintext);
        _openMore = TryOpenMore;
        _seal = codec.SealBackwardCells;
    }

    /// <summary>One stream of a multiplexed route, as its handler sees it (always duplex).</summary>
    internal IncomingTunnel(MuxStream stream, int chunkSize)
    {
        _stream = stream;
        _streamChunkSize = chunkSize;
        Mode = TunnelMode.Duplex;
        (_codec, _requests, _responses, _payload, _open, _openMore, _seal, _time) = (null!, null!, null!, null!, null!, null!, null!, TimeProvider.System);
    }

    /// <summary>Duplex (a reply is expected) or one-way.</summary>
    public TunnelMode Mode { get; }

    /// <summary>The named service the tunnel asked for; null for the default service.</summary>
    public string? Service { get; init; }

    /// <summary>The encoded reply block a one-way message carried for this node to answer over (docs/protocol.md §7.8); empty if none.</summary>
    public ReadOnlyMemory<byte> ReplyBlock { get; internal set; }

    /// <summary>A good write size: one message of reply cells.</summary>
    public int ReplyChunkSize => _stream is null ? _codec.BackwardPayloadCapacity * _maxCellsPerMessage : _streamChunkSize;

    /// <summary>True once the request's end marker arrived.</summary>
    public bool RequestEnded => _stream?.RemoteEnded ?? _requestEnded;

    /// <summary>True once the reply was completed.</summary>
    public bool ReplyEnded => _stream?.LocalEnded ?? _replyEnded;

    /// <summary>Request bytes received so far.</summary>
    public long BytesReceived { get => _stream?.BytesReceived ?? _bytesReceived; private set => _bytesReceived = value; }

    private long _bytesReceived;

    /// <summary>Reply bytes sent so far.</summary>
    public long BytesSent { get => _stream?.BytesSent ?? _bytesSent; private set => _bytesSent = value; }

    private long _bytesSent;

    /// <summary>
    /// Reads request bytes; returns 0 only at the request's authenticated end. One read returns
    /// as much as the buffer holds of the cells that have already arrived (never waiting for more
    /// once it has some), so a handler that echoes each read sends whole messages back, not one
    /// cell per message. Throws <see cref="TunnelException"/> when the stream is cut, tampered
    /// with, or aborted by the origin.
    /// </summary>
    public async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_stream is not null)
        {
            return await _stream.ReadAsync(buffer, cancellationToken);
        }

        if (!await WaitToReadAsync(cancellationToken))
        {
            return 0;
        }

        var total = _payload.CopyTo(buffer.Span, _openMore);
        BytesReceived += total;
        return total;
    }

    /// <summary>
    /// Waits until request bytes can be read without waiting (true), or the request's end (false).
    /// A handler can wait here holding no buffer and rent one only to read: an idle tunnel then
    /// holds none. Throws as <see cref="ReadAsync"/> does.
    /// </summary>
    public async ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken = default)
    {
        if (_stream is not null)
        {
            return await _stream.WaitToReadAsync(cancellationToken);
        }

        if (_failure is not null)
        {
            throw _failure;
        }

        while (!_payload.HasPayload)
        {
            if (_requestEnded)
            {
                return false;
            }

            if (!_payload.HasCells)
            {
                bool more;
                try
                {
                    more = await _requests.MoveNext(cancellationToken);
                }
                catch (RpcException exception) when (!cancellationToken.IsCancellationRequested && exception.StatusCode != StatusCode.Cancelled)
                {
                    // The predecessor sent what the server could not take (not protobuf, over the limit): its fault, as at a relay.
                    var kind = exception.StatusCode == StatusCode.ResourceExhausted ? TunnelErrorKind.LimitExceeded : TunnelErrorKind.ProtocolViolation;
                    throw new TunnelException(kind, 0, "a link message the server could not read", exception);
                }

                if (!more)
                {
                    throw new TunnelException(TunnelErrorKind.Truncated, 0, "the request ended without its end marker");
                }

                _idle?.Touch();
                var message = _requests.Current;
                if (message.Header.Length != 0 || !CellBatch.IsWhole(message.Cells.Length, _cellSize))
                {
                    throw new TunnelException(TunnelErrorKind.ProtocolViolation, 0, "a link message that is not a batch of cells");
                }

                _payload.Load(message.Cells.Memory);
                // The reader keeps the message as Current while the tunnel idles; the payload reader holds the cells alone.
                message.Cells = ByteString.Empty;
            }

            OpenNextCell();
        }

        return true;
    }

    private void OpenNextCell()
    {
        var opened = _payload.OpenNext(_open);
        if (opened.IsError)
        {
            throw new TunnelException(opened.Error, 0, $"request cell refused: {opened.Error.ToTag()}");
        }

        if (opened.Type == CellType.End)
        {
            _requestEnded = true;
            if (_payload.HasCells)
            {
                throw new TunnelException(TunnelErrorKind.ProtocolViolation, 0, "cells after the end marker");
            }

            // From here only this end can keep a quiet tunnel alive.
            // (A one-way tunnel pads too until its receipt: its handler may take its time.)
            if (!_replyEnded && _paddingInterval > TimeSpan.Zero)
            {
                _padding = new PaddingSchedule(_paddingInterval, _time, _writeLock, _cellSize, SendPaddingAsync, Activity.Current);
            }
        }
    }

    // More cells of the message already here, while the reader's buffer has room.
    private bool TryOpenMore()
    {
        if (_requestEnded)
        {
            return false;
        }

        try
        {
            OpenNextCell();
            return true;
        }
        catch (TunnelException failure)
        {
            // The bytes before the bad cell are delivered; the next read reports it.
            _failure = failure;
            return false;
        }
    }

    /// <summary>Sends reply bytes (duplex tunnels only), cut into cells and batched per message.</summary>
    public ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default) =>
        WriteAsync(data, final: false, cancellationToken);

    /// <summary>
    /// Sends reply bytes; with <paramref name="final"/> the reply ends with them, its end marker in the
    /// same message as the last bytes (a short reply then costs every hop one message, not two).
    /// </summary>
    public async ValueTask WriteAsync(ReadOnlyMemory<byte> data, bool final, CancellationToken cancellationToken = default)
    {
        EnsureCanReply();
        if (_stream is not null)
        {
            await _stream.WriteAsync(data, final, cancellationToken);
            return;
        }

        await _writeLock.WaitAsync(cancellationToken);
        try
        {
            while (!data.IsEmpty || final)
            {
                data = await SendAsync(data, final, cancellationToken);
                if (final && data.IsEmpty)
                {
                    EndReply();
                    return;
                }
            }
        }
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>The tunnel is over at this hop, however it ended: no more padding.</summary>
    internal void Close() => _padding?.Dispose();

    private void EndReply()
    {
        _replyEnded = true;
        _padding?.Dispose();
    }

    // One backward padding cell when the reply has been quiet (docs/protocol.md §7.5), under the write lock.
    private async ValueTask SendPaddingAsync(Memory<byte> cell)
    {
        if (_replyEnded || _callToken.IsCancellationRequested)
        {
            return;
        }

        _codec.SealBackward(CellType.Padding, [], cell.Span);
        await WriteCellsAsync(cell);
    }

    /// <summary>Seals and sends the receipt of a one-way tunnel: every forward cell, its end included, was accepted.</summary>
    internal async ValueTask SendReceiptAsync(CancellationToken cancellationToken)
    {
        await _writeLock.WaitAsync(cancellationToken);
        try
        {
            var cell = new byte[_cellSize];
            _codec.WriteReceipt(cell);
            EndReply();
            cancellationToken.ThrowIfCancellationRequested();
            await WriteCellsAsync(cell);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    // Every backward message goes out here: the hop's idle timer and the padding schedule see it.
    private async ValueTask WriteCellsAsync(ReadOnlyMemory<byte> cells)
    {
        await _responses.WriteAsync(new LinkMessage { Cells = UnsafeByteOperations.UnsafeWrap(cells) }, _callToken);
        _idle?.Touch();
        _padding?.Sent();
    }

    /// <summary>True once the request's end marker arrived and every byte before it was read.</summary>
    public bool RequestFullyRead => _stream?.RemoteFullyRead ?? (_requestEnded && !_payload.HasPayload);

    /// <summary>After the handler: reads what it left of the request to the end marker, which must still arrive.</summary>
    internal async ValueTask DrainRequestAsync(CancellationToken cancellationToken)
    {
        if (RequestEnded && RequestFullyRead)
        {
            return;
        }

        var sink = new byte[4096];
        while (await ReadAsync(sink, cancellationToken) > 0)
        {
        }
    }

    /// <summary>Ends the reply with its authenticated end marker.</summary>
    public ValueTask CompleteAsync(CancellationToken cancellationToken = default) =>
        WriteAsync(ReadOnlyMemory<byte>.Empty, final: true, cancellationToken);

    internal async ValueTask SendErrorAsync(TunnelErrorKind kind, CancellationToken cancellationToken)
    {
        await _writeLock.WaitAsync(cancellationToken);
        try
        {
            var cell = new byte[_cellSize];
            _codec.WriteErrorCell(kind, cell);
            EndReply();
            await _responses.WriteAsync(new LinkMessage { Cells = UnsafeByteOperations.UnsafeWrap(cell) }, cancellationToken);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private void EnsureCanReply()
    {
        if (Mode != TunnelMode.Duplex)
        {
            throw new InvalidOperationException("a one-way tunnel has no reply");
        }

        if (ReplyEnded)
        {
            throw new InvalidOperationException("the reply is already complete");
        }
    }

    // Seals up to one message of cells; the last cell is End when `end` and the data fits.
    private async ValueTask<ReadOnlyMemory<byte>> SendAsync(ReadOnlyMemory<byte> data, bool end, CancellationToken cancellationToken)
    {
        var batch = PayloadBatch.Seal(data.Span, end, _codec.BackwardPayloadCapacity, _cellSize, _maxCellsPerMessage, _seal);
        BytesSent += batch.Consumed;

        // The caller's token (the tunnel's deadline) is checked, but the write itself only stops
        // with the call: Kestrel resets a stream whose write is cancelled, which would also destroy
        // the error cell that reports the deadline. The message is serialised before the write
        // completes, so the buffer goes back to the pool only after the await; on a failed write
        // it is left to the GC.
        cancellationToken.ThrowIfCancellationRequested();
        await WriteCellsAsync(batch.Cells);
        batch.Release();
        return data[batch.Consumed..];
    }
}
