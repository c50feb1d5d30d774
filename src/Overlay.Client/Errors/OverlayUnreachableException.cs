using Grpc.Core;

namespace Overlay.Client;

/// <summary>
/// The control endpoint could not be reached, or what answered there is not a node's control
/// endpoint (a link endpoint, another server). No <see cref="OverlayException.Reason"/>: the node never answered.
/// </summary>
public sealed class OverlayUnreachableException(StatusCode statusCode, string message, Exception? innerException = null)
    : OverlayException(statusCode, null, message, innerException);
