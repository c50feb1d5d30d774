using System.Globalization;
using Grpc.Core;

namespace Overlay.Client.Internal;

/// <summary>Turns a failed call's status and the node's trailers into the typed exception.</summary>
internal static class OverlayErrors
{
    public const string ReasonTrailer = "overlay-reason";
    public const string HopTrailer = "overlay-hop";
    public const string ReplyHandleTrailer = "overlay-reply-handle";
    public const string NoReplyReason = "no_reply";

    /// <summary>The response header a Listen call carries once its registration is in place.</summary>
    public const string ListeningHeader = "overlay-listening";

    public static OverlayException From(RpcException exception, Uri endpoint)
    {
        if (exception.Status.DebugException is OverlayException raised)
        {
            return raised; // thrown by this library while starting the call (its token, for one)
        }

        var reason = exception.Trailers.GetValue(ReasonTrailer);
        var detail = exception.Status.Detail;
        if (exception.Trailers.GetValue(HopTrailer) is { } hopText && reason is not null
            && int.TryParse(hopText, NumberStyles.None, CultureInfo.InvariantCulture, out var hop))
        {
            return new OverlayTunnelException(exception.StatusCode, reason, hop, detail, exception);
        }

        if (reason == NoReplyReason)
        {
            return new OverlayNoReplyException(exception.Trailers.GetValue(ReplyHandleTrailer), detail, exception);
        }

        return exception.StatusCode switch
        {
            StatusCode.Unavailable when reason is null => new OverlayUnreachableException(exception.StatusCode,
                $"cannot reach the control endpoint at {endpoint}: is the node running, and is this its Overlay:Control:Url? [{detail}]", exception),
            StatusCode.Unimplemented => new OverlayUnreachableException(exception.StatusCode,
                $"{endpoint} does not serve the control API: it may be the node's link endpoint; use its control endpoint (Overlay:Control:Url)", exception),
            StatusCode.Unauthenticated or StatusCode.PermissionDenied => new OverlayAuthenticationException(exception.StatusCode, reason, detail, exception),
            StatusCode.NotFound => new OverlayNotFoundException(reason, detail, exception),
            StatusCode.InvalidArgument or StatusCode.FailedPrecondition => new OverlayInvalidRequestException(exception.StatusCode, reason, detail, exception),
            StatusCode.ResourceExhausted => new OverlayLimitException(reason, detail, exception),
            _ => new OverlayException(exception.StatusCode, reason, detail, exception),
        };
    }
}
