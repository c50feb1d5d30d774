namespace Overlay.Membership;

/// <summary>Why a membership was refused by <see cref="NodeMembership.TryParse"/> (docs/protocol.md 4.2).</summary>
public enum MembershipError
{
    /// <summary>Not an error: a valid membership.</summary>
    None,

    /// <summary>Bad lengths or field values.</summary>
    Malformed,

    /// <summary>A format version this code does not read.</summary>
    UnsupportedVersion,

    /// <summary>The endpoint is not scheme://host:port of 1 to 255 UTF-8 bytes.</summary>
    InvalidEndpoint,

    /// <summary>NotAfter is not after NotBefore, or the validity is longer than <see cref="NodeMembership.MaxValidity"/>.</summary>
    BadValidity,

    /// <summary>Signed by a key that is not one of the network's authorities.</summary>
    UnknownAuthority,

    /// <summary>NotBefore lies in the future, beyond the allowed clock skew.</summary>
    NotYetValid,

    /// <summary>NotAfter has passed, beyond the allowed clock skew.</summary>
    Expired,

    /// <summary>The authority's signature does not verify.</summary>
    BadSignature,

    /// <summary>The membership is valid but for another node or endpoint than the one it travels with.</summary>
    WrongNode,

    /// <summary>The authority revoked this node's membership.</summary>
    Revoked,

    /// <summary>No membership was presented where the network requires one.</summary>
    Missing,
}

/// <summary>Helpers over <see cref="MembershipError"/>.</summary>
public static class MembershipErrors
{
    /// <summary>The lower-case name used in logs and metric tags.</summary>
    public static string ToTag(this MembershipError error) => error switch
    {
        MembershipError.None => "none",
        MembershipError.Malformed => "malformed",
        MembershipError.UnsupportedVersion => "unsupported_version",
        MembershipError.InvalidEndpoint => "invalid_endpoint",
        MembershipError.BadValidity => "bad_validity",
        MembershipError.UnknownAuthority => "unknown_authority",
        MembershipError.NotYetValid => "not_yet_valid",
        MembershipError.Expired => "expired",
        MembershipError.BadSignature => "bad_signature",
        MembershipError.WrongNode => "wrong_node",
        MembershipError.Revoked => "revoked",
        MembershipError.Missing => "missing",
        _ => "unknown",
    };

    /// <summary>A sentence for a log line.</summary>
    public static string Describe(this MembershipError error) => error switch
    {
        MembershipError.None => "valid",
        MembershipError.Malformed => "the membership is malformed",
        MembershipError.UnsupportedVersion => "the membership has an unknown format version",
        MembershipError.InvalidEndpoint => "the membership's endpoint is not scheme://host:port",
        MembershipError.BadValidity => $"the membership's validity is empty or longer than {NodeMembership.MaxValidity.TotalDays} days",
        MembershipError.UnknownAuthority => "the membership is signed by a key that is not an authority of this network",
        MembershipError.NotYetValid => "the membership is not valid yet",
        MembershipError.Expired => "the membership has expired",
        MembershipError.BadSignature => "the authority's signature over the membership does not verify",
        MembershipError.WrongNode => "the membership names another node or endpoint",
        MembershipError.Revoked => "the membership was revoked",
        MembershipError.Missing => "no membership was presented",
        _ => "unknown",
    };
}
