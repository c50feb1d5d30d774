using System.Collections.Concurrent;

namespace Overlay.Host.Tunnels;

/// <summary>
/// A token bucket per fairness key (<see cref="Link.PeerAddress.FairnessKey"/>) for new relay
/// streams: a previous hop that floods is refused with Busy, without slowing anyone else. Keyed on
/// the address block, not the exact address, so one party cannot mint buckets from an IPv6 /64.
/// Buckets idle for a minute are dropped.
/// </summary>
internal sealed class HeaderRateLimiter(double perSecond, int burst, TimeProvider time)
{
    private readonly ConcurrentDictionary<string, Bucket> _buckets = new(StringComparer.Ordinal);
    private long _lastSweep = time.GetTimestamp();

    public bool TryAcquire(string peer)
    {
        var now = time.GetTimestamp();
        SweepIfDue(now);
        var bucket = _buckets.GetOrAdd(peer, static (_, state) => new Bucket(state.burst, state.now), (burst, now));
        lock (bucket)
        {
            var elapsed = time.GetElapsedTime(bucket.Updated, now).TotalSeconds;
            bucket.Tokens = Math.Min(burst, bucket.Tokens + (elapsed * perSecond));
            bucket.Updated = now;
            if (bucket.Tokens < 1)
            {
                return false;
            }

            bucket.Tokens -= 1;
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
