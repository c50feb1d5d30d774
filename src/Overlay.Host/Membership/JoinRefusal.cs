using System.Globalization;
using Grpc.Core;
using Overlay.Errors;
using Overlay.Host.Link;

namespace Overlay.Host.Membership;

/// <summary>Why an authority refused a join (docs/protocol.md 4.1).</summary>
internal enum JoinRefusal
{
    /// <summary>This node holds no authority key.</summary>
    NotAnAuthority,

    /// <summary>The link proved no node id, or the descriptor is another node's.</summary>
    NotTheCaller,

    /// <summary>The descriptor does not parse or verify.</summary>
    BadDescriptor,

    /// <summary>No token was presented and the caller holds no membership of this authority to renew.</summary>
    NoToken,

    /// <summary>Not a token of this authority (forged, or another authority's).</summary>
    UnknownToken,

    /// <summary>The token's expiry has passed.</summary>
    TokenExpired,

    /// <summary>The token admitted as many nodes as it may.</summary>
    TokenExhausted,

    /// <summary>The token admits another node id.</summary>
    TokenForAnotherNode,

    /// <summary>The caller was revoked (while its revocation is kept).</summary>
    Revoked,
}

/// <summary>Helpers over <see cref="JoinRefusal"/>.</summary>
internal static class JoinRefusals
{
    /// <summary>The trailer naming the refusal (lower-case tag).</summary>
    public const string ReasonTrailer = "overlay-reason";

    public static string ToTag(this JoinRefusal refusal) => refusal switch
    {
        JoinRefusal.NotAnAuthority => "not_an_authority",
        JoinRefusal.NotTheCaller => "not_the_caller",
        JoinRefusal.BadDescriptor => "bad_descriptor",
        JoinRefusal.NoToken => "no_token",
        JoinRefusal.UnknownToken => "unknown_token",
        JoinRefusal.TokenExpired => "token_expired",
        JoinRefusal.TokenExhausted => "token_exhausted",
        JoinRefusal.TokenForAnotherNode => "token_for_another_node",
        JoinRefusal.Revoked => "revoked",
        _ => "unknown",
    };

    /// <summary>
    /// PermissionDenied (FailedPrecondition for a node that is no authority) with <see cref="TunnelErrorKind.NotAMember"/>
    /// in <c>overlay-error</c> and the refusal's tag in <c>overlay-reason</c>.
    /// </summary>
    public static RpcException ToException(this JoinRefusal refusal) => new(
        new Status(refusal == JoinRefusal.NotAnAuthority ? StatusCode.FailedPrecondition : StatusCode.PermissionDenied, refusal.ToTag()),
        new Metadata
        {
            { LinkErrors.TrailerName, ((byte)TunnelErrorKind.NotAMember).ToString(CultureInfo.InvariantCulture) },
            { ReasonTrailer, refusal.ToTag() },
        });
}
