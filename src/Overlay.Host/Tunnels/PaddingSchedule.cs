using System.Buffers;
using System.Diagnostics;
using Grpc.Core;

namespace Overlay.Host.Tunnels;

/// <summary>
/// Keeps a quiet tunnel alive (docs/protocol.md §7.5): one end calls <see cref="Sent"/> after every
/// message it writes, and when it has written nothing for half the padding interval (a third of
/// the network's idle timeout) the schedule sends one padding cell through that end. The longest
/// silence seen by a hop is then about half the idle timeout. One timer per open end.
/// </summary>
/// <remarks>
/// The padding cell shares the end's write lock but never waits for it: while a write runs the
/// tunnel is not quiet, so the turn is skipped. The end's callback seals and writes the cell, or
/// writes nothing when its direction has ended. A failed padding write means the tunnel is broken
/// or closing, which the end's reader or next write reports; the schedule records it on the
/// tunnel's span and moves on.
/// </remarks>
internal sealed class PaddingSchedule : IDisposable
{
    private readonly TimeProvider _time;
    private readonly TimeSpan _quiet;
    private readonly SemaphoreSlim _writeLock;
    private readonly int _cellSize;
    private readonly Func<Memory<byte>, ValueTask> _sealAndWrite;
    private readonly Activity? _activity;
    private readonly ITimer _timer;
    private long _lastSent;
    private int _sending;

    /// <param name="paddingInterval">A third of the network's idle timeout.</param>
    /// <param name="time">The node's clock.</param>
    /// <param name="writeLock">The end's write lock; held while <paramref name="sealAndWrite"/> runs.</param>
    /// <param name="cellSize">The network's cell size: the buffer handed to <paramref name="sealAndWrite"/>.</param>
    /// <param name="sealAndWrite">Seals one padding cell into the buffer and writes it, or returns when the direction has ended.</param>
    /// <param name="activity">The tunnel's span, for failed padding writes.</param>
    public PaddingSchedule(
        TimeSpan paddingInterval,
        TimeProvider time,
        SemaphoreSlim writeLock,
        int cellSize,
        Func<Memory<byte>, ValueTask> sealAndWrite,
        Activity? activity)
    {
        _time = time;
        _quiet = paddingInterval / 2;
        _writeLock = writeLock;
        _cellSize = cellSize;
        _sealAndWrite = sealAndWrite;
        _activity = activity;
        _lastSent = time.GetTimestamp();
        _timer = time.CreateTimer(static state => ((PaddingSchedule)state!).Tick(), this, _quiet, _quiet);
    }

    /// <summary>The end just wrote a message.</summary>
    public void Sent() => Volatile.Write(ref _lastSent, _time.GetTimestamp());

    public void Dispose() => _timer.Dispose();

    private void Tick()
    {
        if (_time.GetElapsedTime(Volatile.Read(ref _lastSent)) < _quiet || Interlocked.Exchange(ref _sending, 1) != 0)
        {
            return;
        }

        _ = SendAsync();
    }

    private async Task SendAsync()
    {
        try
        {
            if (!_writeLock.Wait(0))
            {
                return;
            }

            var buffer = ArrayPool<byte>.Shared.Rent(_cellSize);
            try
            {
                await _sealAndWrite(buffer.AsMemory(0, _cellSize));
                Sent();
            }
            catch (Exception exception) when (exception is RpcException or IOException or InvalidOperationException or OperationCanceledException or ObjectDisposedException)
            {
                _activity?.AddEvent(new ActivityEvent("overlay.padding.failed", tags: new ActivityTagsCollection { ["exception.type"] = exception.GetType().Name }));
            }
            finally
            {
                // A sealed padding cell is ciphertext under a key the pool never sees.
                ArrayPool<byte>.Shared.Return(buffer);
                _writeLock.Release();
            }
        }
        finally
        {
            Volatile.Write(ref _sending, 0);
        }
    }
}
