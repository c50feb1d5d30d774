using Grpc.Core;

namespace Overlay.Client;

/// <summary>No token, a wrong token, or a caller that may not do this (Unauthenticated or PermissionDenied).</summary>
public sealed class OverlayAuthenticationException(StatusCode statusCode, string? reason, string message, Exception? innerException = null)
    : OverlayException(statusCode, reason, message, innerException);
