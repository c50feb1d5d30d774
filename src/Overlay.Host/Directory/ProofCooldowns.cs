using System.Security.Cryptography;
using Overlay.Host.Options;

namespace Overlay.Host.Directory;

/// <summary>
/// Endpoints whose proof failed, and until when each is not dialed again. The first failure cools
/// an endpoint for Overlay:Directory:ProofCooldownInitial, each further one doubles the wait up to
/// Overlay:Directory:ProofCooldown, and a proof that succeeds clears it: a peer that was still
/// starting when its neighbours came up is proved again within seconds, while an endpoint gossiped
/// forever costs one dial per cap once its waits have grown. Each wait carries up to a quarter more
/// of random spread (one that would pass the cap is instead up to a quarter below it), so nodes
/// started together do not re-dial a peer in step.
/// </summary>
internal sealed class ProofCooldowns
{
    /// <summary>Most endpoints remembered; a gossip flood of distinct dead endpoints cannot grow the map past it.</summary>
    public const int MaxEndpoints = 16_384;

    private readonly Dictionary<Uri, Cooldown> _endpoints = [];
    private readonly Lock _lock = new();
    private readonly TimeSpan _initial;
    private readonly TimeSpan _cap;
    private readonly TimeProvider _time;

    public ProofCooldowns(DirectoryOptions options, TimeProvider time)
    {
        _initial = options.ProofCooldownInitial;
        _cap = options.ProofCooldown;
        _time = time;
    }

    /// <summary>Endpoints remembered now.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _endpoints.Count;
            }
        }
    }

    /// <summary>True while <paramref name="endpoint"/> must not be dialed for a proof.</summary>
    public bool IsCoolingDown(Uri endpoint)
    {
        var now = _time.GetTimestamp();
        lock (_lock)
        {
            return _endpoints.TryGetValue(endpoint, out var cooldown) && now < cooldown.Until;
        }
    }

    /// <summary>Records a failed proof of <paramref name="endpoint"/>; returns how long it now waits.</summary>
    public TimeSpan Failed(Uri endpoint)
    {
        var now = _time.GetTimestamp();
        lock (_lock)
        {
            // A streak ends when the endpoint's last wait ran out more than a cap ago: it was not
            // gossiped, or not failing, for that long.
            var step = _endpoints.TryGetValue(endpoint, out var last) && !IsForgotten(last, now)
                ? Min(last.Step * 2, _cap)
                : _initial;
            if (!_endpoints.ContainsKey(endpoint) && _endpoints.Count >= MaxEndpoints)
            {
                MakeRoom(now);
            }

            // Past the cap the spread goes below it instead, so waits at the cap stay out of step too.
            var wait = step + Spread(step);
            if (wait > _cap)
            {
                wait = _cap - Spread(_cap);
            }

            _endpoints[endpoint] = new Cooldown(now + ToTimestamp(wait), step);
            return wait;
        }
    }

    /// <summary>Records a proof of <paramref name="endpoint"/> that succeeded: its next failure starts over.</summary>
    public void Succeeded(Uri endpoint)
    {
        lock (_lock)
        {
            _endpoints.Remove(endpoint);
        }
    }

    // Costliest last: forgotten streaks change nothing, a lapsed one restarts at the initial wait, a
    // running one costs one more dial.
    private void MakeRoom(long now)
    {
        RemoveWhileFull(cooldown => IsForgotten(cooldown, now));
        RemoveWhileFull(cooldown => cooldown.Until <= now);
        RemoveWhileFull(_ => true);
    }

    private void RemoveWhileFull(Func<Cooldown, bool> removable)
    {
        foreach (var (endpoint, cooldown) in _endpoints)
        {
            if (_endpoints.Count < MaxEndpoints)
            {
                return;
            }

            if (removable(cooldown))
            {
                _endpoints.Remove(endpoint);
            }
        }
    }

    private bool IsForgotten(Cooldown cooldown, long now) => now - cooldown.Until >= ToTimestamp(_cap);

    // Whole milliseconds from the CSPRNG; validation keeps a step within a day, so a quarter fits an int.
    private static TimeSpan Spread(TimeSpan step) =>
        TimeSpan.FromMilliseconds(RandomNumberGenerator.GetInt32(0, (int)(step.TotalMilliseconds / 4) + 1));

    // In integers: through a double, a wait of whole milliseconds could come out a tick short.
    private long ToTimestamp(TimeSpan span) => (long)((Int128)span.Ticks * _time.TimestampFrequency / TimeSpan.TicksPerSecond);

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    /// <param name="Until">Timestamp the endpoint may be dialed again from.</param>
    /// <param name="Step">The wait before its spread, doubled by the next failure.</param>
    private readonly record struct Cooldown(long Until, TimeSpan Step);
}
