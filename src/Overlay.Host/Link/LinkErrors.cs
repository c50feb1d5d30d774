using System.Globalization;
using Grpc.Core;
using Microsoft.AspNetCore.Http;
using Overlay.Errors;

namespace Overlay.Host.Link;

/// <summary>
/// How a hop that has no keys to seal an error cell (it refused the header) tells its
/// predecessor why: a gRPC status with the error code in the <c>overlay-error</c> trailer.
/// </summary>
internal static class LinkErrors
{
    public const string TrailerName = "overlay-error";

    public static RpcException Refuse(TunnelErrorKind kind) =>
        new(new Status(StatusOf(kind), kind.ToTag()), new Metadata { { TrailerName, Code(kind) } });

    /// <summary>
    /// The same refusal as <see cref="Refuse"/>, written before the gRPC pipeline as a trailers-only
    /// response (the status in the only HEADERS frame, as gRPC itself answers a call that fails before
    /// any message).
    /// </summary>
    public static void WriteRefusal(HttpResponse response, TunnelErrorKind kind)
    {
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "application/grpc";
        response.Headers["grpc-status"] = ((int)StatusOf(kind)).ToString(CultureInfo.InvariantCulture);
        response.Headers["grpc-message"] = kind.ToTag();
        response.Headers[TrailerName] = Code(kind);
    }

    private static StatusCode StatusOf(TunnelErrorKind kind) => kind switch
    {
        TunnelErrorKind.Busy or TunnelErrorKind.LimitExceeded => StatusCode.ResourceExhausted,
        TunnelErrorKind.Malformed or TunnelErrorKind.ProtocolViolation => StatusCode.InvalidArgument,
        TunnelErrorKind.DeadlineExceeded => StatusCode.DeadlineExceeded,
        TunnelErrorKind.NotAMember => StatusCode.PermissionDenied,
        _ => StatusCode.FailedPrecondition,
    };

    private static string Code(TunnelErrorKind kind) => ((byte)kind).ToString(CultureInfo.InvariantCulture);

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
