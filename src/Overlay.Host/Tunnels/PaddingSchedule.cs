namespace Overlay.Host.Tunnels;

/// <summary>
/// Keeps a quiet tunnel alive (docs/protocol.md §7.5): one end calls <see cref="Sent"/> after every
/// message it writes, and when it has written nothing for half the padding interval (a third of
/// the network's idle timeout) the schedule asks it for a padding cell; that callback records its
/// own failures (a failed padding write means the tunnel is broken, which its reader reports). The longest silence seen by
/// a hop is then about half the idle timeout. One timer per open end; the end decides whether a
/// padding cell fits now (its writer may be busy, or its direction already ended).
/// </summary>
internal sealed class PaddingSchedule : IDisposable
{
    private readonly TimeProvider _time;
    private readonly TimeSpan _quiet;
    private readonly Func<Task> _sendPadding;
    private readonly ITimer _timer;
    private long _lastSent;
    private int _sending;

    public PaddingSchedule(TimeSpan paddingInterval, TimeProvider time, Func<Task> sendPadding)
    {
        _time = time;
        _quiet = paddingInterval / 2;
        _sendPadding = sendPadding;
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
            await _sendPadding();
        }
        finally
        {
            Volatile.Write(ref _sending, 0);
        }
    }
}
