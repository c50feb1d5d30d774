using System.Globalization;
using Grpc.Core;
using Overlay.Errors;

namespace Overlay.Host.Link;

/// <summary>
/// How a hop that has no keys to seal an error cell (it refused the header) tells its
/// predecessor why: a gRPC status with the error code in the <c>overlay-error</c> trailer.
/// </summary>
internal static class LinkErrors
{
    public const string TrailerName = "overlay-error";

    public static RpcException Refuse(TunnelErrorKind kind)
    {
        var status = kind switch
        {
            TunnelErrorKind.Busy or TunnelErrorKind.LimitExceeded => StatusCode.ResourceExhausted,
            TunnelErrorKind.Malformed or TunnelErrorKind.ProtocolViolation => StatusCode.InvalidArgument,
            TunnelErrorKind.DeadlineExceeded => StatusCode.DeadlineExceeded,
            TunnelErrorKind.NotAMember => StatusCode.PermissionDenied,
            _ => StatusCode.FailedPrecondition,
        };
        return new RpcException(new Status(status, kind.ToTag()), new Metadata { { TrailerName, ((byte)kind).ToString(CultureInfo.InvariantCulture) } });
    }

    /// <summary>
    /// The typed reason a peer ended a call with; <see cref="TunnelErrorKind.LinkUnauthenticated"/>
    /// when this node refused the peer's certificate; else <paramref name="otherwise"/> for a transport failure.
    /// </summary>
    public static TunnelErrorKind ReasonOf(RpcException exception, TunnelErrorKind otherwise)
    {
        if (Tls.LinkCertificateRefusedException.Find(exception) is not null)
        {
            return TunnelErrorKind.LinkUnauthenticated;
        }

        var code = exception.Trailers.GetValue(TrailerName);
        if (code is not null && byte.TryParse(code, NumberStyles.None, CultureInfo.InvariantCulture, out var value))
        {
            return TunnelErrorKinds.FromWire(value);
        }

        return exception.StatusCode == StatusCode.ResourceExhausted ? TunnelErrorKind.Busy : otherwise;
    }
}
