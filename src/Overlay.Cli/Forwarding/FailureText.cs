using System.Net.Sockets;
using Overlay.Client;

namespace Overlay.Cli.Forwarding;

/// <summary>The reason a forwarded connection closed, for its log line.</summary>
internal static class FailureText
{
    public static string Of(Exception exception) => exception switch
    {
        OverlayTunnelException tunnel => $"the tunnel failed: {tunnel.Reason} at hop {tunnel.Hop} ({tunnel.Message})",
        OverlayException overlay => $"{overlay.Reason ?? overlay.StatusCode.ToString()}: {overlay.Message}",
        SocketException socket => $"connection {socket.SocketErrorCode}: {socket.Message}",
        IOException { InnerException: SocketException socket } => $"connection {socket.SocketErrorCode}: {socket.Message}",
        EndOfStreamException => "the connection closed during the handshake",
        _ => exception.Message,
    };
}
