using Grpc.Core;

namespace Overlay.Client;

/// <summary>An unknown node, relay, peer or tunnel (NotFound).</summary>
public sealed class OverlayNotFoundException(string? reason, string message, Exception? innerException = null)
    : OverlayException(StatusCode.NotFound, reason, message, innerException);
