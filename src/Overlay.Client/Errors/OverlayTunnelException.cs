using Grpc.Core;

namespace Overlay.Client;

/// <summary>
/// A tunnel failed on its way or at its destination: <see cref="OverlayException.Reason"/> is the
/// tunnel error tag (docs/protocol.md section 8) and <see cref="Hop"/> the failing hop.
/// </summary>
public sealed class OverlayTunnelException(StatusCode statusCode, string reason, int hop, string message, Exception? innerException = null)
    : OverlayException(statusCode, reason, message, innerException)
{
    /// <summary>The failing hop: 1..R the relays, R + 1 the destination, 0 the origin itself or not attributable.</summary>
    public int Hop { get; } = hop;
}
