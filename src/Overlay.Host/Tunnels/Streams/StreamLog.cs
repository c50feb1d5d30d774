using Microsoft.Extensions.Logging;

namespace Overlay.Host.Tunnels.Streams;

/// <summary>Log messages of multiplexed routes (event ids 22x, beside the tunnels' 2xx).</summary>
internal static partial class StreamLog
{
    [LoggerMessage(220, LogLevel.Debug, "Stream open refused: {Reason}")]
    public static partial void OpenRefused(ILogger logger, string reason);

    [LoggerMessage(221, LogLevel.Warning, "A stream's handler failed")]
    public static partial void HandlerFailed(ILogger logger, Exception exception);

    [LoggerMessage(222, LogLevel.Debug, "Stream ended early: {Reason}")]
    public static partial void StreamEnded(ILogger logger, string reason);
}
