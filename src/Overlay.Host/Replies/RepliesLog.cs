using Microsoft.Extensions.Logging;

namespace Overlay.Host.Replies;

/// <summary>Log events of the reply blocks this node keeps (never a key, a reply id or a route).</summary>
internal static partial class RepliesLog
{
    [LoggerMessage(700, LogLevel.Information, "Kept {Count} outstanding reply blocks across the restart ({Expired} had expired)")]
    public static partial void SecretsRestored(ILogger logger, int count, int expired);

    [LoggerMessage(701, LogLevel.Warning, "A reply secret file was deleted unread: {Problem}")]
    public static partial void SecretDiscarded(ILogger logger, string problem);

    [LoggerMessage(702, LogLevel.Debug, "A reply arrived over the reply block {Handle} while nobody waited for it; it is kept until collected or until the block expires")]
    public static partial void ReplyUnclaimed(ILogger logger, string handle);

    [LoggerMessage(703, LogLevel.Error, "The secret file of reply block {Handle} could not be deleted")]
    public static partial void SecretNotDeleted(ILogger logger, string handle, Exception exception);
}
