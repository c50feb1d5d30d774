using Microsoft.Extensions.Logging;

namespace Overlay.Host.Admission;

/// <summary>Admission's log messages (event ids 6xx). A peer can trigger these, so callers throttle them (<see cref="WarningThrottle"/>).</summary>
internal static partial class AdmissionLog
{
    [LoggerMessage(600, LogLevel.Warning, "Link admission refused {Source}: {Limit} ({Suppressed} more refusals of this source in the last interval not logged)")]
    public static partial void Refused(ILogger logger, string source, string limit, long suppressed);

    [LoggerMessage(601, LogLevel.Warning, "Link peer {Source} sent bad input: {Reason} ({Suppressed} more from this source in the last interval not logged)")]
    public static partial void BadInput(ILogger logger, string source, string reason, long suppressed);
}
