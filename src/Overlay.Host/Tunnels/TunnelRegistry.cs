namespace Overlay.Host.Tunnels;

/// <summary>
/// Counts the tunnels this node serves and originates, against the configured limit, and knows
/// whether the node is draining (shutting down: no new tunnels, open ones may finish).
/// Served slots are shared between previous hops (fairness keys): a key takes a slot while the
/// total is below the capacity minus a reserve of an eighth, or while it holds fewer than
/// capacity / (keys holding slots + 1). One previous hop can fill seven eighths; the reserve stays
/// for the others, each of which may also take up to its fair share.
/// </summary>
public sealed class TunnelRegistry
{
    private readonly int _limit;
    private readonly int _reserve;
    private readonly Lock _idleLock = new();
    private readonly Dictionary<string, int> _servedByKey = new(StringComparer.Ordinal);
    private TaskCompletionSource _idle = Completed();
    private int _served;
    private int _originated;
    private volatile bool _draining;

    internal TunnelRegistry(int limit)
    {
        _limit = limit;
        _reserve = limit / 8;
    }

    /// <summary>Tunnels this node relays or delivers right now.</summary>
    public int Served => Volatile.Read(ref _served);

    /// <summary>Tunnels this node originated that are still open.</summary>
    public int Originated => Volatile.Read(ref _originated);

    /// <summary>All open tunnels at this node.</summary>
    public int Active => Served + Originated;

    /// <summary>True once shutdown began: new tunnels are refused with Busy.</summary>
    public bool Draining => _draining;

    internal void BeginDrain()
    {
        _draining = true;
        _drainStarted.Cancel();
    }

    /// <summary>Cancelled when shutdown begins: what the node keeps open for later (routes kept for streams) lets go then.</summary>
    internal CancellationToken DrainStarted => _drainStarted.Token;

    private readonly CancellationTokenSource _drainStarted = new();

    /// <summary>Completes when no tunnel is open (or at once if none is).</summary>
    public Task WaitForIdleAsync(CancellationToken cancellationToken)
    {
        lock (_idleLock)
        {
            return Active == 0 ? Task.CompletedTask : _idle.Task.WaitAsync(cancellationToken);
        }
    }

    /// <summary>Takes a served slot for a tunnel arriving from <paramref name="key"/>, if the fair-share rule allows.</summary>
    internal bool TryEnterServed(string key)
    {
        if (_draining)
        {
            return false;
        }

        lock (_idleLock)
        {
            var held = _servedByKey.GetValueOrDefault(key);
            var keys = _servedByKey.Count;
            if (_served >= _limit || (_served >= _limit - _reserve && held >= _limit / (keys + 1)))
            {
                return false;
            }

            _servedByKey[key] = held + 1;
            Increment(ref _served);
            return true;
        }
    }

    internal void ExitServed(string key)
    {
        lock (_idleLock)
        {
            var held = _servedByKey.GetValueOrDefault(key);
            if (held <= 1)
            {
                _servedByKey.Remove(key);
            }
            else
            {
                _servedByKey[key] = held - 1;
            }

            Decrement(ref _served);
        }
    }

    internal void EnterOriginated() => Increment(ref _originated);

    internal void ExitOriginated() => Decrement(ref _originated);

    private int Increment(ref int counter)
    {
        lock (_idleLock)
        {
            if (Active == 0)
            {
                _idle = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }

            return ++counter;
        }
    }

    private void Decrement(ref int counter)
    {
        lock (_idleLock)
        {
            --counter;
            if (Active == 0)
            {
                _idle.TrySetResult();
            }
        }
    }

    private static TaskCompletionSource Completed()
    {
        var source = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        source.SetResult();
        return source;
    }
}
