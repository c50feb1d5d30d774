using Grpc.Core;
using Overlay.Client.Internal;
using Overlay.Protocol.Control.V1;

namespace Overlay.Client;

/// <summary>
/// One tunnel as a duplex stream. At the origin: write the request, <see cref="CompleteWritingAsync"/>,
/// read the reply until <c>ReadAsync</c> returns 0. At the destination (an accepted tunnel): read
/// the request until 0, write the reply, <see cref="CompleteWritingAsync"/>. Reads and writes may
/// run at the same time (one reader, one writer). Failures are <see cref="OverlayException"/>s,
/// tunnel failures <see cref="OverlayTunnelException"/> with the failing hop. Disposing before both
/// sides ended abandons the tunnel (the other end sees it cancelled).
/// </summary>
public sealed class TunnelStream : Stream
{
    private readonly ITunnelCall _call;
    private readonly Uri _endpoint;
    private readonly int _chunk;
    private ReadOnlyMemory<byte> _pending;
    private bool _endSeen;

    // Set by the reader (the end marker seen and every byte handed out) and the writer on their own
    // threads, each then reading the other's: full fences.
    private int _readEnded;
    private int _writeEnded;
    private int _finishing;
    private bool _disposed;

    internal TunnelStream(ITunnelCall call, Uri endpoint, int chunk, string tunnelId, TunnelMode mode, IReadOnlyList<string> route)
    {
        _call = call;
        _endpoint = endpoint;
        _chunk = chunk;
        TunnelId = tunnelId;
        Mode = mode;
        Route = route;
    }

    /// <summary>The tunnel's id, as <c>ListTunnels</c> shows it and <c>CloseTunnel</c> takes it.</summary>
    public string TunnelId { get; }

    /// <summary>Duplex, or one-way (an accepted one-way tunnel has no reply to write).</summary>
    public TunnelMode Mode { get; }

    /// <summary>At the destination: the named service the tunnel asked for, when it came through a listener's offer; null for the default.</summary>
    public string? Service { get; init; }

    /// <summary>At the destination: the reply block a one-way message carried, to answer it with <see cref="OverlayClient.SendReplyAsync"/>; empty if none.</summary>
    public ReadOnlyMemory<byte> ReplyBlock { get; init; }

    /// <summary>At the origin: the relays in order, then the destination. Empty at the destination, which never learns it.</summary>
    public IReadOnlyList<string> Route { get; }

    /// <summary>Bytes read so far.</summary>
    public long BytesRead { get; private set; }

    /// <summary>Bytes written so far.</summary>
    public long BytesWritten { get; private set; }

    /// <inheritdoc/>
    public override bool CanRead => true;

    /// <inheritdoc/>
    public override bool CanWrite => !WriteEnded;

    private bool ReadEnded => Volatile.Read(ref _readEnded) != 0;

    private bool WriteEnded => Volatile.Read(ref _writeEnded) != 0;

    /// <inheritdoc/>
    public override bool CanSeek => false;

    /// <inheritdoc/>
    public override long Length => throw new NotSupportedException();

    /// <inheritdoc/>
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    /// <inheritdoc/>
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (_pending.IsEmpty)
        {
            if (_endSeen || buffer.IsEmpty)
            {
                return 0;
            }

            var message = await ReadMessageAsync(cancellationToken)
                ?? throw new IOException($"tunnel {TunnelId}: the node ended the call without the end marker");
            _pending = message.Data;
            if (message.End)
            {
                _endSeen = true;
                if (_pending.IsEmpty)
                {
                    Interlocked.Exchange(ref _readEnded, 1);
                    await FinishAsync(cancellationToken);
                }
            }
        }

        var count = Math.Min(buffer.Length, _pending.Length);
        _pending[..count].CopyTo(buffer);
        _pending = _pending[count..];
        BytesRead += count;
        if (_endSeen && _pending.IsEmpty)
        {
            Interlocked.Exchange(ref _readEnded, 1);
            await FinishAsync(cancellationToken);
        }

        return count;
    }

    /// <inheritdoc/>
    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (WriteEnded)
        {
            throw new InvalidOperationException($"tunnel {TunnelId}: writing was already completed");
        }

        while (!buffer.IsEmpty)
        {
            var part = buffer[..Math.Min(_chunk, buffer.Length)];
            try
            {
                await _call.WriteAsync(part, cancellationToken);
            }
            catch (RpcException exception)
            {
                throw OverlayErrors.From(exception, _endpoint);
            }

            BytesWritten += part.Length;
            buffer = buffer[part.Length..];
        }
    }

    /// <summary>
    /// Ends what this side sends: the request at the origin, the reply at the destination. Once the
    /// other side has ended too, waits for the node's final word on the tunnel and throws if it failed.
    /// </summary>
    public async Task CompleteWritingAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (WriteEnded)
        {
            return;
        }

        try
        {
            await _call.WriteEndAsync(cancellationToken);
        }
        catch (RpcException exception)
        {
            throw OverlayErrors.From(exception, _endpoint);
        }

        Interlocked.Exchange(ref _writeEnded, 1);
        if (ReadEnded)
        {
            await FinishAsync(cancellationToken);
        }
    }

    // Both sides ended: the call's status says whether the tunnel finished well.
    private async Task FinishAsync(CancellationToken cancellationToken)
    {
        if (!WriteEnded || Interlocked.Exchange(ref _finishing, 1) != 0)
        {
            return;
        }

        if (await ReadMessageAsync(cancellationToken) is not null)
        {
            throw new IOException($"tunnel {TunnelId}: the node sent more after the end marker");
        }
    }

    private async Task<(ReadOnlyMemory<byte> Data, bool End)?> ReadMessageAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await _call.ReadAsync(cancellationToken);
        }
        catch (RpcException exception)
        {
            throw OverlayErrors.From(exception, _endpoint);
        }
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing && !_disposed)
        {
            _disposed = true;
            _call.Dispose();
        }

        base.Dispose(disposing);
    }

    /// <inheritdoc/>
    public override ValueTask DisposeAsync()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <inheritdoc/>
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <inheritdoc/>
    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask; // every write is sent as it is made

    /// <inheritdoc/>
    public override void Flush()
    {
    }

    /// <inheritdoc/>
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("a tunnel is read asynchronously: use ReadAsync");

    /// <inheritdoc/>
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException("a tunnel is written asynchronously: use WriteAsync");

    /// <inheritdoc/>
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    /// <inheritdoc/>
    public override void SetLength(long value) => throw new NotSupportedException();
}
