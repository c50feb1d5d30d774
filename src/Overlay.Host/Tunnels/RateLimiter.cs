using System.Collections.Concurrent;

namespace Overlay.Host.Tunnels;

/// <summary>
/// A token bucket per fairness key (<see cref="Link.PeerAddress.FairnessKey"/>): a source that
/// floods is refused (<see cref="TryAcquire"/>) or paced (<see cref="TryReserve"/>), without
/// slowing anyone else. Keyed on the address block, not the exact address, so one party cannot mint
/// buckets from an IPv6 /64. Buckets idle for a minute are dropped.
/// </summary>
internal sealed class HeaderRateLimiter(double perSecond, int burst, TimeProvider time)
{
    private readonly ConcurrentDictionary<string, Bucket> _buckets = new(StringComparer.Ordinal);
    private long _lastSweep = time.GetTimestamp();

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
        var now = time.GetTimestamp();
        SweepIfDue(now);
        var bucket = _buckets.GetOrAdd(peer, static (_, state) => new Bucket(state.burst, state.now), (burst, now));
        lock (bucket)
        {
            var elapsed = time.GetElapsedTime(bucket.Updated, now).TotalSeconds;
            var tokens = Math.Min(burst, bucket.Tokens + (elapsed * perSecond)) - 1;
            var wait = tokens >= 0 ? 0 : -tokens / perSecond;
            if (wait > maxWait.TotalSeconds)
            {
                delay = default;
                return false;
            }

            bucket.Tokens = tokens;
            bucket.Updated = now;
            delay = TimeSpan.FromSeconds(wait);
            return true;
        }
    }

    private void SweepIfDue(long now)
    {
        var last = Interlocked.Read(ref _lastSweep);
        if (time.GetElapsedTime(last, now) < TimeSpan.FromMinutes(1) || Interlocked.CompareExchange(ref _lastSweep, now, last) != last)
        {
            return;
        }

        foreach (var (peer, bucket) in _buckets)
        {
            if (time.GetElapsedTime(bucket.Updated, now) > TimeSpan.FromMinutes(1))
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
