using System.Collections.Concurrent;

namespace Overlay.Host.Tunnels;

/// <summary>
/// A token bucket per fairness key (<see cref="Link.PeerAddress.FairnessKey"/>): a source that
/// floods is refused (<see cref="TryAcquire"/>) or paced (<see cref="TryReserve"/>). Keyed on the
/// address block, not the exact address, so one party cannot mint buckets from an IPv6 /64. Buckets
/// idle for a minute are dropped.
/// <para>
/// With a shared rate, the keys active in the last second split it equally: a key alone gets up to
/// its own rate, and while another key is active a flood through one key is held to its share, so
/// the node's CPU left to the others does not depend on how hard one source pushes.
/// </para>
/// </summary>
internal sealed class HeaderRateLimiter
{
    /// <summary>A key that took a token this recently counts as active in the shared split.</summary>
    public static readonly TimeSpan ActiveWindow = TimeSpan.FromSeconds(1);

    // The active keys are recounted at most this often (a scan of the buckets), not on every token.
    private static readonly TimeSpan RecountInterval = TimeSpan.FromMilliseconds(100);

    private readonly ConcurrentDictionary<string, Bucket> _buckets = new(StringComparer.Ordinal);
    private readonly double _perSecond;
    private readonly double _sharedPerSecond;
    private readonly int _burst;
    private readonly TimeProvider _time;
    private long _lastSweep;
    private long _lastRecount;
    private int _activeKeys;

    /// <param name="perSecond">A key's rate when it is the only active key.</param>
    /// <param name="burst">Tokens a key may take at once.</param>
    /// <param name="time">The clock.</param>
    /// <param name="sharedPerSecond">The rate the active keys split equally; infinity for none.</param>
    public HeaderRateLimiter(double perSecond, int burst, TimeProvider time, double sharedPerSecond = double.PositiveInfinity)
    {
        _perSecond = perSecond;
        _sharedPerSecond = sharedPerSecond;
        _burst = burst;
        _time = time;
        _lastSweep = _lastRecount = time.GetTimestamp();
    }

    /// <summary>Keys active within <see cref="ActiveWindow"/> at the last recount.</summary>
    public int ActiveKeys => Volatile.Read(ref _activeKeys);

    /// <summary>Takes a token if one is there now.</summary>
    public bool TryAcquire(string peer) => TryReserve(peer, TimeSpan.Zero, out _);

    /// <summary>
    /// Takes the next token, borrowing ahead when the bucket is empty: <paramref name="delay"/> is how
    /// long the caller must wait before using it, so a flooding source's requests are spread at the
    /// rate rather than refused and sent again at once (a refusal costs the node a stream as well).
    /// False, and nothing taken, when that wait would exceed <paramref name="maxWait"/>.
    /// </summary>
    public bool TryReserve(string peer, TimeSpan maxWait, out TimeSpan delay)
    {
        var now = _time.GetTimestamp();
        SweepIfDue(now);
        // A new bucket starts full and idle (dated two active windows back), so the recount does not count it yet.
        var bucket = _buckets.GetOrAdd(peer, static (_, state) => new Bucket(state.burst, state.idleSince), (burst: _burst, idleSince: now - (2 * (long)(ActiveWindow.TotalSeconds * _time.TimestampFrequency))));
        var rate = RateNow(now, bucket);
        lock (bucket)
        {
            var elapsed = _time.GetElapsedTime(bucket.Updated, now).TotalSeconds;
            var tokens = Math.Min(_burst, bucket.Tokens + (elapsed * rate)) - 1;
            var wait = tokens >= 0 ? 0 : -tokens / rate;
            if (wait > maxWait.TotalSeconds)
            {
                // Refused, but the key is still active: it keeps its place in the split.
                bucket.Tokens = tokens + 1;
                bucket.Updated = now;
                delay = default;
                return false;
            }

            bucket.Tokens = tokens;
            bucket.Updated = now;
            delay = TimeSpan.FromSeconds(wait);
            return true;
        }
    }

    private double RateNow(long now, Bucket bucket)
    {
        if (double.IsPositiveInfinity(_sharedPerSecond))
        {
            return _perSecond;
        }

        RecountIfDue(now);
        // A key that was idle has not been counted yet: it is one more.
        var active = Math.Max(1, ActiveKeys + (_time.GetElapsedTime(Volatile.Read(ref bucket.Updated), now) > ActiveWindow ? 1 : 0));
        return Math.Min(_perSecond, _sharedPerSecond / active);
    }

    private void RecountIfDue(long now)
    {
        var last = Interlocked.Read(ref _lastRecount);
        if (_time.GetElapsedTime(last, now) < RecountInterval || Interlocked.CompareExchange(ref _lastRecount, now, last) != last)
        {
            return;
        }

        var active = 0;
        foreach (var (_, bucket) in _buckets)
        {
            if (_time.GetElapsedTime(Volatile.Read(ref bucket.Updated), now) <= ActiveWindow)
            {
                active++;
            }
        }

        Volatile.Write(ref _activeKeys, active);
    }

    private void SweepIfDue(long now)
    {
        var last = Interlocked.Read(ref _lastSweep);
        if (_time.GetElapsedTime(last, now) < TimeSpan.FromMinutes(1) || Interlocked.CompareExchange(ref _lastSweep, now, last) != last)
        {
            return;
        }

        foreach (var (peer, bucket) in _buckets)
        {
            if (_time.GetElapsedTime(Volatile.Read(ref bucket.Updated), now) > TimeSpan.FromMinutes(1))
            {
                _buckets.TryRemove(peer, out _);
            }
        }
    }

    private sealed class Bucket(double tokens, long updated)
    {
        public double Tokens = tokens;
        public long Updated = updated;
    }
}
