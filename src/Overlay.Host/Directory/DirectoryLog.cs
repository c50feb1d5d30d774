using Microsoft.Extensions.Logging;

namespace Overlay.Host.Directory;

/// <summary>Log messages of the directory's defences against hostile peers (event ids 320-329).</summary>
internal static partial class DirectoryLog
{
    [LoggerMessage(320, LogLevel.Information, "Peer {PeerId} of address block {Block} evicted to make room for a peer of a less crowded block")]
    public static partial void PeerEvicted(ILogger logger, string peerId, string block);

    [LoggerMessage(321, LogLevel.Debug, "A peer of address block {Block} was not admitted: {Reason}")]
    public static partial void PeerRefused(ILogger logger, string block, string reason);

    [LoggerMessage(322, LogLevel.Debug, "Directory call {Method} from {Source} refused: more than Overlay:Directory:CallsPerSecondPerSource")]
    public static partial void CallRateExceeded(ILogger logger, string method, string source);

    [LoggerMessage(323, LogLevel.Error, "An endpoint proof failed unexpectedly; the prover goes on with the next")]
    public static partial void ProverFailed(ILogger logger, Exception exception);

    [LoggerMessage(324, LogLevel.Debug, "The endpoint proof of peer {PeerId} was cut short by shutdown")]
    public static partial void ProofCutByShutdown(ILogger logger, string peerId);
}
