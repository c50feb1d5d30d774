namespace Overlay.Host.Tunnels;

/// <summary>
/// Counts the tunnels this node serves and originates, against the configured limit, and knows
/// whether the node is draining (shutting down: no new tunnels, open ones may finish).
/// </summary>
public sealed class TunnelRegistry
{
    private readonly int _limit;
    private readonly Lock _idleLock = new();
    private TaskCompletionSource _idle = Completed();
    private int _served;
    private int _originated;
    private volatile bool _draining;

    internal TunnelRegistry(int limit) => _limit = limit;

    /// <summary>Tunnels this node relays or delivers right now.</summary>
    public int Served => Volatile.Read(ref _served);

    /// <summary>Tunnels this node originated that are still open.</summary>
    public int Originated => Volatile.Read(ref _originated);

    /// <summary>All open tunnels at this node.</summary>
    public int Active => Served + Originated;

    /// <summary>True once shutdown began: new tunnels are refused with Busy.</summary>
    public bool Draining => _draining;

    internal void BeginDrain() => _draining = true;

    /// <summary>Completes when no tunnel is open (or at once if none is).</summary>
    public Task WaitForIdleAsync(CancellationToken cancellationToken)
    {
        lock (_idleLock)
        {
            return Active == 0 ? Task.CompletedTask : _idle.Task.WaitAsync(cancellationToken);
        }
    }

    internal bool TryEnterServed()
    {
        if (_draining)
        {
            return false;
        }

        if (Increment(ref _served) <= _limit)
        {
            return true;
        }

        Decrement(ref _served);
        return false;
    }

    internal void ExitServed() => Decrement(ref _served);

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
