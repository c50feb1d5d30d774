using Grpc.Core;

namespace Overlay.Client;

/// <summary>
/// A control call failed. <see cref="StatusCode"/> says what kind of failure, <see cref="Reason"/>
/// is the node's machine-readable <c>overlay-reason</c> (a tunnel error tag such as
/// <c>no_route</c>, or a control reason such as <c>too_many_tunnels</c>), and the message says what
/// to do. Subclasses narrow it down; catch this one for all.
/// </summary>
public class OverlayException : Exception
{
    /// <summary>Creates the exception.</summary>
    public OverlayException(StatusCode statusCode, string? reason, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        StatusCode = statusCode;
        Reason = reason;
    }

    /// <summary>The gRPC status of the failed call.</summary>
    public StatusCode StatusCode { get; }

    /// <summary>The <c>overlay-reason</c> trailer; null when the node did not answer (or is not a node).</summary>
    public string? Reason { get; }
}
