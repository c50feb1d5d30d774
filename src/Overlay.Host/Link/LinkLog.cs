using Microsoft.Extensions.Logging;

namespace Overlay.Host.Link;

/// <summary>Log messages of the link's dialing side (event ids 330-339).</summary>
internal static partial class LinkLog
{
    [LoggerMessage(330, LogLevel.Warning, "Not dialing {Host}: {Reason}")]
    public static partial void DialRefused(ILogger logger, string host, string reason);
}
