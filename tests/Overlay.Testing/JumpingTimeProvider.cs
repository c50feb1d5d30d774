namespace Overlay.Testing;

/// <summary>
/// A clock for a live cluster over hours: it runs in real time, so links, gossip and call deadlines
/// behave as usual, and <see cref="Jump"/> moves it forward at once, firing every timer that falls
/// due in the jump (a renewal scheduled at half-life, a retry interval). A <c>FakeTimeProvider</c>
/// would stand still between advances, and a cluster's real network traffic with it.
/// </summary>
internal sealed class JumpingTimeProvider : TimeProvider
{
    private readonly Lock _lock = new();
    private readonly HashSet<JumpingTimer> _timers = [];
    private long _offsetTicks;

    /// <summary>How far the clock is ahead of real time.</summary>
    public TimeSpan Offset => TimeSpan.FromTicks(Interlocked.Read(ref _offsetTicks));

    public override DateTimeOffset GetUtcNow() => System.GetUtcNow() + Offset;

    // In 128 bits: ticks times a nanosecond frequency overflow a long after a quarter of an hour.
    public override long GetTimestamp() => System.GetTimestamp() + (long)((Int128)Interlocked.Read(ref _offsetTicks) * TimestampFrequency / TimeSpan.TicksPerSecond);

    public override long TimestampFrequency => System.TimestampFrequency;

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new JumpingTimer(this, callback, state);
        lock (_lock)
        {
            _timers.Add(timer);
        }

        timer.Change(dueTime, period);
        return timer;
    }

    /// <summary>Moves the clock forward by <paramref name="by"/>; timers due by then fire now.</summary>
    public void Jump(TimeSpan by)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(by, TimeSpan.Zero);
        JumpingTimer[] timers;
        lock (_lock)
        {
            Interlocked.Add(ref _offsetTicks, by.Ticks);
            timers = [.. _timers];
        }

        foreach (var timer in timers)
        {
            timer.Reschedule();
        }
    }

    private void Remove(JumpingTimer timer)
    {
        lock (_lock)
        {
            _timers.Remove(timer);
        }
    }

    /// <summary>A real timer that knows when, on the jumping clock, it is due next.</summary>
    private sealed class JumpingTimer : ITimer
    {
        private readonly JumpingTimeProvider _clock;
        private readonly ITimer _inner;
        private readonly Lock _lock = new();
        private DateTimeOffset? _dueAt;
        private TimeSpan _period = Timeout.InfiniteTimeSpan;

        public JumpingTimer(JumpingTimeProvider clock, TimerCallback callback, object? state)
        {
            _clock = clock;
            _inner = System.CreateTimer(self => ((JumpingTimer)self!).Fire(callback, state), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        }

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            lock (_lock)
            {
                _dueAt = dueTime == Timeout.InfiniteTimeSpan ? null : _clock.GetUtcNow() + dueTime;
                _period = period;
                return _inner.Change(dueTime, period);
            }
        }

        // After a jump: the time left until due on the moved clock (zero if the jump passed it).
        public void Reschedule()
        {
            lock (_lock)
            {
                if (_dueAt is { } dueAt)
                {
                    var left = dueAt - _clock.GetUtcNow();
                    _inner.Change(left > TimeSpan.Zero ? left : TimeSpan.Zero, _period);
                }
            }
        }

        private void Fire(TimerCallback callback, object? state)
        {
            lock (_lock)
            {
                _dueAt = _period == Timeout.InfiniteTimeSpan || _period == TimeSpan.Zero ? null : _clock.GetUtcNow() + _period;
            }

            callback(state);
        }

        public void Dispose()
        {
            _clock.Remove(this);
            _inner.Dispose();
        }

        public ValueTask DisposeAsync()
        {
            _clock.Remove(this);
            return _inner.DisposeAsync();
        }
    }
}
