using Overlay.Errors;

namespace Overlay.Host.Tunnels;

/// <summary>The first failure of a relayed tunnel; later ones are consequences.</summary>
internal sealed class RelayFailure
{
    private int _set;

    public TunnelErrorKind Kind { get; private set; }

    /// <summary>The fault is on the link to the next hop (or the next hop refused).</summary>
    public bool NextHop { get; private set; }

    /// <summary>The predecessor is gone: no error cell can reach the origin through us.</summary>
    public bool UpstreamLost { get; private set; }

    public Exception? Exception { get; private set; }

    public void Set(TunnelErrorKind kind, bool nextHop, Exception? exception = null)
    {
        if (Interlocked.Exchange(ref _set, 1) == 0)
        {
            (Kind, NextHop, Exception) = (kind, nextHop, exception);
        }
    }

    public void SetUpstreamLost(Exception? exception, TunnelErrorKind kind = TunnelErrorKind.LinkLost)
    {
        if (Interlocked.Exchange(ref _set, 1) == 0)
        {
            (Kind, UpstreamLost, Exception) = (kind, true, exception);
        }
    }

    public string Describe() => UpstreamLost
        ? Kind == TunnelErrorKind.Cancelled ? "the previous hop closed the tunnel early" : "link to the previous hop lost"
        : NextHop ? $"next hop: {Kind.ToTag()}" : Kind.ToTag();
}
