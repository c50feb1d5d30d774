namespace Overlay.Bench.Network;

/// <summary>How one soak round trip ended.</summary>
internal enum SoakResult
{
    /// <summary>The reply equals the request (the destination's default handler echoes).</summary>
    Success,

    /// <summary>A <see cref="Overlay.Errors.TunnelException"/> at the origin, within the deadline plus the grace.</summary>
    TypedFailure,

    /// <summary>A reply arrived but differs from the request.</summary>
    WrongReply,

    /// <summary>Any other exception.</summary>
    UntypedFailure,

    /// <summary>No outcome within the deadline plus the grace.</summary>
    Hang,
}
