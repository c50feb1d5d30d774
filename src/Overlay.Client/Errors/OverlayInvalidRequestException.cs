using Grpc.Core;

namespace Overlay.Client;

/// <summary>The node called the request invalid (InvalidArgument or FailedPrecondition); the message names the field.</summary>
public sealed class OverlayInvalidRequestException(StatusCode statusCode, string? reason, string message, Exception? innerException = null)
    : OverlayException(statusCode, reason, message, innerException);
