using System.Collections.Concurrent;

namespace Overlay.Host.Admission;

/// <summary>
/// At most one warning per source per interval, with the count of those suppressed since: a peer
/// that misbehaves on purpose must not be able to flood the log. Bounded: past <c>maxSources</c>
/// tracked sources the table starts afresh.
/// </summary>
internal sealed class WarningThrottle(TimeProvider time, TimeSpan interval, int maxSources = 4096)
{
    /// <summary>The node's interval for warnings a peer can trigger.</summary>
    public static readonly TimeSpan PeerInterval = TimeSpan.FromSeconds(10);

    private readonly ConcurrentDictionary<string, Entry> _sources = new(StringComparer.Ordinal);

    /// <summary>True when a warning about <paramref name="source"/> may be logged now; <paramref name="suppressed"/> says how many were not since the last.</summary>
    public bool ShouldLog(string source, out long suppressed)
    {
        var now = time.GetTimestamp();
        if (_sources.Count >= maxSources && !_sources.ContainsKey(source))
        {
            _sources.Clear();
        }

        var entry = _sources.GetOrAdd(source, static _ => new Entry());
        lock (entry)
        {
            if (entry.Logged != 0 && time.GetElapsedTime(entry.Logged, now) < interval)
            {
                entry.Suppressed++;
                suppressed = 0;
                return false;
            }

            suppressed = entry.Suppressed;
            entry.Suppressed = 0;
            entry.Logged = now;
            return true;
        }
    }

    private sealed class Entry
    {
        public long Logged;
        public long Suppressed;
    }
}
