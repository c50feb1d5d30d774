using System.Globalization;
using Grpc.Core;
using Overlay.Errors;

namespace Overlay.Host.Control;

/// <summary>
/// Control API failures: a status code, a detail that says what to do, and the machine-readable
/// <c>overlay-reason</c> (and for tunnel failures <c>overlay-hop</c>) trailers.
/// </summary>
internal static class ControlErrors
{
    public const string ReasonTrailer = "overlay-reason";
    public const string HopTrailer = "overlay-hop";

    /// <summary>The response header of a Listen call whose registration is in place (a refusal has none).</summary>
    public const string ListeningHeader = "overlay-listening";

    public static RpcException Error(StatusCode code, string reason, string detail, int? hop = null)
    {
        var trailers = new Metadata { { ReasonTrailer, reason } };
        if (hop is { } h)
        {
            trailers.Add(HopTrailer, h.ToString(CultureInfo.InvariantCulture));
        }

        return new RpcException(new Status(code, detail), trailers);
    }

    public static RpcException InvalidArgument(string detail) => Error(StatusCode.InvalidArgument, "invalid_argument", detail);

    public static RpcException NotFound(string reason, string detail) => Error(StatusCode.NotFound, reason, detail);

    public static RpcException PermissionDenied(string detail) => Error(StatusCode.PermissionDenied, "not_permitted", detail);

    /// <summary>A tunnel failure as a status: the code by kind, the tag and the failing hop in trailers.</summary>
    public static RpcException FromTunnel(TunnelException failure)
    {
        var code = failure.Kind switch
        {
            TunnelErrorKind.DeadlineExceeded => StatusCode.DeadlineExceeded,
            TunnelErrorKind.LimitExceeded or TunnelErrorKind.Busy => StatusCode.ResourceExhausted,
            TunnelErrorKind.Cancelled => StatusCode.Cancelled,
            _ => StatusCode.Unavailable,
        };
        var where = failure.Hop > 0 ? $" at hop {failure.Hop}" : "";
        var hint = failure.Kind switch
        {
            TunnelErrorKind.NoRoute => "; check `overlay peers` for enough up peers, or ask for fewer relays",
            TunnelErrorKind.DeadlineExceeded => "; retry with a longer deadline",
            TunnelErrorKind.Busy => "; the hop is overloaded, retry later",
            TunnelErrorKind.DestinationRefused => "; the destination's application refused it or did not accept in time",
            TunnelErrorKind.Unconfirmed => "; the destination's receipt never arrived: the message may or may not have been delivered (resend only what is safe to receive twice)",
            TunnelErrorKind.IdleTimeout => "; no cell crossed a hop for the network's idle timeout",
            _ => "",
        };
        return Error(code, failure.Kind.ToTag(), $"tunnel failed{where}: {failure.Kind.ToTag()} ({failure.Message}){hint}", failure.Hop);
    }
}
