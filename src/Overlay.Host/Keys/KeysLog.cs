using Microsoft.Extensions.Logging;

namespace Overlay.Host.Keys;

/// <summary>Log events of the onion-key rotation beyond the schedule (early rotations, the live-epoch cap, the save on stop).</summary>
internal static partial class KeysLog
{
    [LoggerMessage(440, LogLevel.Information, "Early onion key rotation deferred until {At}: the last rotation was less than Overlay:OnionKeys:MinEarlyRotationInterval ago")]
    public static partial void EarlyRotationDeferred(ILogger logger, DateTimeOffset at);

    [LoggerMessage(441, LogLevel.Warning, "Onion key epoch {Epoch} retired before its overlap window ended: at most {MaxLiveEpochs} epochs are held (Overlay:OnionKeys:MaxLiveEpochs)")]
    public static partial void OldestEpochRetired(ILogger logger, uint epoch, int maxLiveEpochs);

    [LoggerMessage(442, LogLevel.Information, "Saved {Count} onion key epochs with their replay caches")]
    public static partial void OnionKeysSaved(ILogger logger, int count);
}
