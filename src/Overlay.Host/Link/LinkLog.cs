using Microsoft.Extensions.Logging;

namespace Overlay.Host.Link;

/// <summary>Log messages of the link's dialing side (event ids 330-339).</summary>
internal static partial class LinkLog
{
    // Information, not Warning: hostile gossip can name many such endpoints; overlay.link.dials.refused counts them all.
    [LoggerMessage(330, LogLevel.Information, "Not dialing {Host}: {Reason}")]
    public static partial void DialRefused(ILogger logger, string host, string reason);
}
