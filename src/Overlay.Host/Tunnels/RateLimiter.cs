using System.Collections.Concurrent;

namespace Overlay.Host.Tunnels;

/// <summary>
/// A token bucket per fairness key (<see cref="Link.PeerAddress.FairnessKey"/>): a source that
/// floods is refused (<see cref="TryAcquire"/>) or paced (<see cref="TryReserve"/>). Keyed on the
/// address block, not the exact address, so one party cannot mint buckets from an IPv6 /64. Buckets
/// idle for a minute are dropped.
/// <para>
/// With a shared rate, the keys that used at least a 64th of it over about the last second split it
/// equally: a key alone gets up to its own rate, and while another such key is active a flood
/// through one key is held to its share, so the CPU left to the others does not depend on how hard
/// one source pushes. Lighter keys are not counted, so a few streams a second from many blocks
/// cannot shrink everyone's share. The split is equal, not max-min: on a node the flood has already
/// slowed, the others' measured use falls, and a share computed from use would hand the flood more
/// (measured in the bench's fairness verb: the other hop's setup 2.6x under a max-min split, 1.5-1.9x under the equal one).
/// </para>
/// </summary>
internal sealed class HeaderRateLimiter
{
    /// <summary>A key that took a token this recently, and uses at least <see cref="SignificantShare"/> of the shared rate, counts in the split.</summary>
    public static readonly TimeSpan ActiveWindow = TimeSpan.FromSeconds(1);

    /// <summary>The part of the shared rate a key must use (smoothed) to count in the split.</summary>
    public const double SignificantShare = 1.0 / 64;

    /// <summary>How often the keys' use and the active count are recomputed (a scan of the buckets).</summary>
    public static readonly TimeSpan RecountInterval = TimeSpan.FromMilliseconds(100);

    private readonly ConcurrentDictionary<string, Bucket> _buckets = new(StringComparer.Ordinal);
    private readonly double _perSecond;
    private readonly double _sharedPerSecond;
    private readonly int _burst;
    private readonly TimeProvider _time;
    private readonly Lock _recountLock = new();
    private long _lastSweep;
    private long _lastRecount;
    private int _activeKeys;

    /// <param name="perSecond">A key's rate when it is the only active key.</param>
    /// <param name="burst">Tokens a key may take at once.</param>
    /// <param name="time">The clock.</param>
    /// <param name="sharedPerSecond">The rate the active keys share; infinity for none.</param>
    public HeaderRateLimiter(double perSecond, int burst, TimeProvider time, double sharedPerSecond = double.PositiveInfinity)
    {
        _perSecond = perSecond;
        _sharedPerSecond = sharedPerSecond;
        _burst = burst;
        _time = time;
        _lastSweep = _lastRecount = time.GetTimestamp();
    }

    /// <summary>Keys counted in the split at the last recount: active within <see cref="ActiveWindow"/> and using at least <see cref="SignificantShare"/>.</summary>
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
                // Refused, nothing taken; the bucket is brought up to date (the same tokens as not touching it).
                bucket.Tokens = tokens + 1;
                bucket.Updated = now;
                delay = default;
                return false;
            }

            bucket.Tokens = tokens;
            bucket.Updated = now;
            bucket.Taken++;
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
        // A key not counted at the last recount (new, light, or back from idle) splits the rate with the counted ones.
        var counted = Volatile.Read(ref bucket.Counted) ? 0 : 1;
        return Math.Min(_perSecond, _sharedPerSecond / Math.Max(1, ActiveKeys + counted));
    }

    private void RecountIfDue(long now)
    {
        var last = Interlocked.Read(ref _lastRecount);
        var elapsed = _time.GetElapsedTime(last, now);
        if (elapsed < RecountInterval || Interlocked.CompareExchange(ref _lastRecount, now, last) != last || !_recountLock.TryEnter())
        {
            return;
        }

        try
        {
            // Each key's use, smoothed with a time constant of the active window.
            var weight = 1 - Math.Exp(-elapsed.TotalSeconds / ActiveWindow.TotalSeconds);
            var significant = _sharedPerSecond * SignificantShare;
            var active = 0;
            foreach (var (_, bucket) in _buckets)
            {
                var taken = Volatile.Read(ref bucket.Taken);
                var instant = (taken - bucket.TakenAtRecount) / elapsed.TotalSeconds;
                bucket.TakenAtRecount = taken;
                bucket.Use += (instant - bucket.Use) * weight;
                var counted = bucket.Use >= significant && _time.GetElapsedTime(Volatile.Read(ref bucket.Updated), now) <= ActiveWindow;
                Volatile.Write(ref bucket.Counted, counted);
                active += counted ? 1 : 0;
            }

            Volatile.Write(ref _activeKeys, active);
        }
        finally
        {
            _recountLock.Exit();
        }
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

        // Tokens taken in all, and at the last recount; the smoothed use in tokens per second, and whether
        // the last recount counted the key in the split (the recount's alone, but Counted is read by all).
        public long Taken;
        public long TakenAtRecount;
        public double Use;
        public bool Counted;
    }
}
