namespace Overlay.Host.Tunnels;

/// <summary>
/// A hop's idle timeout (docs/protocol.md §7.5): its token cancels once no cell crossed the hop in
/// either direction for the network's idle timeout, which ends tunnels whose ends went quiet
/// without closing. Touched once per link message, not per cell.
/// </summary>
internal sealed class IdleTimer : IDisposable
{
    private readonly CancellationTokenSource _source;
    private readonly TimeSpan _timeout;

    public IdleTimer(TimeSpan timeout, TimeProvider time)
    {
        _timeout = timeout;
        _source = new CancellationTokenSource(timeout, time);
    }

    public CancellationToken Token => _source.Token;

    /// <summary>True once the timeout passed with no cell.</summary>
    public bool Expired => _source.IsCancellationRequested;

    /// <summary>A cell crossed the hop: the timeout starts again.</summary>
    public void Touch() => _source.CancelAfter(_timeout);

    public void Dispose() => _source.Dispose();
}
