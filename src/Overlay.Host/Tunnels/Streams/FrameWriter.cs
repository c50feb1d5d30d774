using System.Buffers;
using Overlay.Errors;

namespace Overlay.Host.Tunnels.Streams;

/// <summary>
/// Serialises the frames of every stream on one route into its single byte stream. Each call holds
/// the route for one message of frames at most, and waiters are served in arrival order, so
/// streams writing at once take turns instead of one starving the rest.
/// </summary>
internal sealed class FrameWriter(Func<ReadOnlyMemory<byte>, bool, CancellationToken, ValueTask> write)
{
    // Never disposed: a stream's write may still release it after its route failed (it holds no wait handle).
    private readonly SemaphoreSlim _lock = new(1, 1);

    /// <summary>Writes whole frames; with <paramref name="final"/> the route's own direction ends after them.</summary>
    public async ValueTask WriteAsync(ReadOnlyMemory<byte> frames, CancellationToken cancellationToken, bool final = false)
    {
        await _lock.WaitAsync(cancellationToken);
        try
        {
            // Once started, a write is not cancelled by one stream's token: half a frame on the route
            // would end every stream on it. The route's own deadline, idle timeout or failure bounds it.
            await write(frames, final, CancellationToken.None);
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>Writes one Credit (<paramref name="value"/> bytes) or Reset (<paramref name="value"/> an error code) frame.</summary>
    public async ValueTask WriteControlAsync(StreamFrameType type, uint streamId, uint value, CancellationToken cancellationToken)
    {
        var frame = ArrayPool<byte>.Shared.Rent(StreamFrames.HeaderSize + StreamFrames.CreditSize);
        var size = type == StreamFrameType.Credit
            ? StreamFrames.WriteCredit(frame, streamId, value)
            : StreamFrames.WriteReset(frame, streamId, (TunnelErrorKind)value);
        await WriteAsync(frame.AsMemory(0, size), cancellationToken);
        // Copied into cells before the write returned; after a failed write the buffer is left to the GC.
        ArrayPool<byte>.Shared.Return(frame);
    }

}
