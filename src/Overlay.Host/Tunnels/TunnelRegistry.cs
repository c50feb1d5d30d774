namespace Overlay.Host.Tunnels;

/// <summary>Counts the tunnels this node serves, in every role, against the configured limit.</summary>
public sealed class TunnelRegistry
{
    private readonly int _limit;
    private int _served;
    private int _originated;

    internal TunnelRegistry(int limit) => _limit = limit;

    /// <summary>Tunnels this node relays or delivers right now.</summary>
    public int Served => Volatile.Read(ref _served);

    /// <summary>Tunnels this node originated that are still open.</summary>
    public int Originated => Volatile.Read(ref _originated);

    /// <summary>All open tunnels at this node.</summary>
    public int Active => Served + Originated;

    internal bool TryEnterServed()
    {
        if (Interlocked.Increment(ref _served) <= _limit)
        {
            return true;
        }

        Interlocked.Decrement(ref _served);
        return false;
    }

    internal void ExitServed() => Interlocked.Decrement(ref _served);

    internal void EnterOriginated() => Interlocked.Increment(ref _originated);

    internal void ExitOriginated() => Interlocked.Decrement(ref _originated);
}
