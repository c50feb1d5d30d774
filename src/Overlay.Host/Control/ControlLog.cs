using Microsoft.Extensions.Logging;

namespace Overlay.Host.Control;

/// <summary>The control API's log messages (event ids 5xx). Never a token.</summary>
internal static partial class ControlLog
{
    [LoggerMessage(500, LogLevel.Information, "Control API listening on {Endpoint}")]
    public static partial void Listening(ILogger logger, string endpoint);

    [LoggerMessage(501, LogLevel.Information, "Control token generated into {Path} (owner-only)")]
    public static partial void TokenGenerated(ILogger logger, string path);

    [LoggerMessage(502, LogLevel.Information, "Control token read from {Path}")]
    public static partial void TokenRead(ILogger logger, string path);

    [LoggerMessage(503, LogLevel.Warning, "Control token file {Path} is readable by others; restrict it to the owner (and group)")]
    public static partial void TokenWorldReadable(ILogger logger, string path);

    [LoggerMessage(504, LogLevel.Debug, "Control call {Method} refused: {Reason}")]
    public static partial void CallRefused(ILogger logger, string method, string reason);

    [LoggerMessage(505, LogLevel.Warning, "A control {Stream} consumer fell behind by {Buffered} messages and was ended")]
    public static partial void ConsumerDropped(ILogger logger, string stream, int buffered);

    [LoggerMessage(506, LogLevel.Information, "An application ({Client}) is listening for incoming tunnels")]
    public static partial void ListenerRegistered(ILogger logger, string client);

    [LoggerMessage(507, LogLevel.Information, "An application ({Client}) stopped listening")]
    public static partial void ListenerUnregistered(ILogger logger, string client);

    [LoggerMessage(508, LogLevel.Debug, "Control tunnel {TunnelId} failed: {Reason}")]
    public static partial void TunnelFailed(ILogger logger, string tunnelId, string reason, Exception? exception);
}
