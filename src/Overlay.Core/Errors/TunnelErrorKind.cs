namespace Overlay.Errors;

/// <summary>
/// The catalogue of typed tunnel failures, shared by every layer from the cell codec to the
/// control API. The numeric value is the wire code carried in an error cell: never renumber.
/// </summary>
public enum TunnelErrorKind : byte
{
    /// <summary>Not an error; never sent.</summary>
    None = 0,

    /// <summary>A header or cell failed its MAC or AEAD check.</summary>
    Tampered = 1,

    /// <summary>A header this hop has already processed in the same onion-key epoch.</summary>
    Replayed = 2,

    /// <summary>The header names an onion-key epoch this hop does not hold (expired, or lost in a restart).</summary>
    UnknownEpoch = 3,

    /// <summary>The header's version byte is not one this hop speaks.</summary>
    UnsupportedVersion = 4,

    /// <summary>Input that does not parse: wrong size, bad encoding, non-canonical or low-order key.</summary>
    Malformed = 5,

    /// <summary>The next hop named in the header is not in this hop's directory.</summary>
    UnknownNextHop = 6,

    /// <summary>The next hop could not be reached.</summary>
    NextHopUnreachable = 7,

    /// <summary>An established link to a neighbouring hop broke mid-stream.</summary>
    LinkLost = 8,

    /// <summary>The tunnel's deadline passed.</summary>
    DeadlineExceeded = 9,

    /// <summary>A size or count limit was exceeded.</summary>
    LimitExceeded = 10,

    /// <summary>The hop refuses new tunnels for now (replay cache full, rate limit, draining).</summary>
    Busy = 11,

    /// <summary>A stream ended before its authenticated end marker.</summary>
    Truncated = 12,

    /// <summary>A peer broke the protocol's rules (cells after the end, a second header, ...).</summary>
    ProtocolViolation = 13,

    /// <summary>The destination accepts no tunnels of this kind.</summary>
    DestinationRefused = 14,

    /// <summary>The destination's application failed while handling the tunnel.</summary>
    HandlerFailed = 15,

    /// <summary>Not enough usable peers to build the requested route (origin only).</summary>
    NoRoute = 16,

    /// <summary>The tunnel was cancelled by its owner.</summary>
    Cancelled = 17,

    /// <summary>A peer runs with other network parameters (MaxRelays, cell size, cell construction).</summary>
    NetworkMismatch = 18,

    /// <summary>A bug: an unexpected exception inside a hop.</summary>
    Internal = 19,

    /// <summary>No cell crossed the hop in either direction for the network's idle timeout.</summary>
    IdleTimeout = 20,

    /// <summary>
    /// A one-way send whose receipt never arrived: not known to be delivered (a relay can drop a
    /// message as easily as its receipt). Anything that may be resent must be safe to receive twice.
    /// </summary>
    Unconfirmed = 21,

    /// <summary>
    /// The next hop's TLS certificate did not prove the node id the route names (another node, no
    /// or a malformed identity extension, a bad signature, expired): the link was refused.
    /// </summary>
    LinkUnauthenticated = 22,

    /// <summary>A reply block used after its expiry (the earliest onion-key expiry of its route, or sooner).</summary>
    Expired = 23,

    /// <summary>
    /// In a private network (one that names authorities), the link peer holds no valid membership
    /// (none known, expired, forged or revoked): the call was refused.
    /// </summary>
    NotAMember = 24,
}

/// <summary>Helpers over <see cref="TunnelErrorKind"/>.</summary>
public static class TunnelErrorKinds
{
    /// <summary>The highest wire code this version knows.</summary>
    public const TunnelErrorKind Last = TunnelErrorKind.NotAMember;

    /// <summary>Reads a wire code; unknown codes from newer peers map to <see cref="TunnelErrorKind.ProtocolViolation"/>.</summary>
    public static TunnelErrorKind FromWire(byte code) =>
        code is > 0 and <= (byte)Last && Enum.IsDefined((TunnelErrorKind)code) ? (TunnelErrorKind)code : TunnelErrorKind.ProtocolViolation;

    /// <summary>The lower-case name used in logs, metrics and span <c>error.type</c>.</summary>
    public static string ToTag(this TunnelErrorKind kind) => kind switch
    {
        TunnelErrorKind.None => "none",
        TunnelErrorKind.Tampered => "tampered",
        TunnelErrorKind.Replayed => "replayed",
        TunnelErrorKind.UnknownEpoch => "unknown_epoch",
        TunnelErrorKind.UnsupportedVersion => "unsupported_version",
        TunnelErrorKind.Malformed => "malformed",
        TunnelErrorKind.UnknownNextHop => "unknown_next_hop",
        TunnelErrorKind.NextHopUnreachable => "next_hop_unreachable",
        TunnelErrorKind.LinkLost => "link_lost",
        TunnelErrorKind.DeadlineExceeded => "timeout",
        TunnelErrorKind.LimitExceeded => "limit_exceeded",
        TunnelErrorKind.Busy => "busy",
        TunnelErrorKind.Truncated => "truncated",
        TunnelErrorKind.ProtocolViolation => "protocol_violation",
        TunnelErrorKind.DestinationRefused => "destination_refused",
        TunnelErrorKind.HandlerFailed => "handler_failed",
        TunnelErrorKind.NoRoute => "no_route",
        TunnelErrorKind.Cancelled => "cancelled",
        TunnelErrorKind.NetworkMismatch => "network_mismatch",
        TunnelErrorKind.Internal => "internal",
        TunnelErrorKind.IdleTimeout => "idle_timeout",
        TunnelErrorKind.Unconfirmed => "unconfirmed",
        TunnelErrorKind.LinkUnauthenticated => "link_unauthenticated",
        TunnelErrorKind.Expired => "expired",
        TunnelErrorKind.NotAMember => "not_a_member",
        _ => "unknown",
    };
}
