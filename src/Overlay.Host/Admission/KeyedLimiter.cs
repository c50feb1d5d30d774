namespace Overlay.Host.Admission;

/// <summary>
/// A count with a global cap and a cap per fairness key (connections per listener, streams waiting
/// for their header): one key cannot take more than its cap, and all keys together no more than the total.
/// </summary>
internal sealed class KeyedLimiter(int total, int perKey)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, int> _byKey = new(StringComparer.Ordinal);
    private int _count;

    /// <summary>Held by all keys now.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _count;
            }
        }
    }

    /// <summary>Held by <paramref name="key"/> now.</summary>
    public int CountOf(string key)
    {
        lock (_lock)
        {
            return _byKey.GetValueOrDefault(key);
        }
    }

    public bool TryEnter(string key)
    {
        lock (_lock)
        {
            var held = _byKey.GetValueOrDefault(key);
            if (_count >= total || held >= perKey)
            {
                return false;
            }

            _byKey[key] = held + 1;
            _count++;
            return true;
        }
    }

    public void Exit(string key)
    {
        lock (_lock)
        {
            var held = _byKey.GetValueOrDefault(key);
            if (held <= 1)
            {
                _byKey.Remove(key);
            }
            else
            {
                _byKey[key] = held - 1;
            }

            _count--;
        }
    }
}
