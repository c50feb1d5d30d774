using Grpc.Core;

namespace Overlay.Client;

/// <summary>A limit of the node was reached: too many tunnels or listeners, a consumer too slow (ResourceExhausted).</summary>
public sealed class OverlayLimitException(string? reason, string message, Exception? innerException = null)
    : OverlayException(StatusCode.ResourceExhausted, reason, message, innerException);
