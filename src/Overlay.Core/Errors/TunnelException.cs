namespace Overlay.Errors;

/// <summary>
/// A tunnel ended with a typed error. <see cref="Hop"/> says where, as the origin learned it:
/// 1..R for the relays in route order, R + 1 for the destination, 0 when the origin itself
/// failed or the failing hop could not be identified.
/// </summary>
public sealed class TunnelException : Exception
{
    /// <summary>Creates the exception.</summary>
    public TunnelException(TunnelErrorKind kind, int hop, string message, Exception? inner = null)
        : this(kind, hop, hop, message, inner)
    {
    }

    /// <summary>Creates the exception for a failure reported by another hop than the one it names.</summary>
    public TunnelException(TunnelErrorKind kind, int hop, int reportedBy, string message, Exception? inner = null)
        : base(message, inner)
    {
        Kind = kind;
        Hop = hop;
        ReportedBy = reportedBy;
    }

    /// <summary>Creates the exception with a default message.</summary>
    public TunnelException(TunnelErrorKind kind, int hop = 0)
        : this(kind, hop, hop > 0 ? $"tunnel failed at hop {hop}: {kind.ToTag()}" : $"tunnel failed: {kind.ToTag()}")
    {
    }

    /// <summary>What went wrong.</summary>
    public TunnelErrorKind Kind { get; }

    /// <summary>Which hop failed (1-based; 0 = the origin or unknown).</summary>
    public int Hop { get; }

    /// <summary>
    /// The hop whose key authenticated the report (or that the origin itself observed). An error
    /// cell's "next hop" scope is only the reporter's word: a peer is penalised on its own report,
    /// never on another's.
    /// </summary>
    public int ReportedBy { get; }
}
