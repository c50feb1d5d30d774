using Microsoft.Extensions.Logging;

namespace Overlay.Host.Telemetry;

/// <summary>
/// The node's log messages. Event ids by area: 1xx node, 2xx tunnels, 3xx directory, 4xx keys.
/// No key material ever, and no other hops' ids above Debug.
/// </summary>
internal static partial class Log
{
    [LoggerMessage(100, LogLevel.Information, "Node {NodeId} listening for links on {Endpoint}")]
    public static partial void NodeListening(ILogger logger, string nodeId, string endpoint);

    [LoggerMessage(101, LogLevel.Warning, "The link endpoint {Endpoint} is cleartext (h2c) beyond loopback: links are neither encrypted nor authenticated; use an https Overlay:Link:Url outside private test networks")]
    public static partial void CleartextBeyondLoopback(ILogger logger, string endpoint);

    [LoggerMessage(102, LogLevel.Debug, "{Service} stopped")]
    public static partial void BackgroundServiceStopped(ILogger logger, string service);

    [LoggerMessage(200, LogLevel.Debug, "Header refused: {Reason}")]
    public static partial void HeaderRejected(ILogger logger, string reason);

    [LoggerMessage(201, LogLevel.Warning, "Relayed tunnel failed: {Reason}")]
    public static partial void RelayFailed(ILogger logger, string reason, Exception? exception);

    [LoggerMessage(206, LogLevel.Information, "Relayed tunnel ended early: {Reason}")]
    public static partial void RelayEndedUpstream(ILogger logger, string reason);

    [LoggerMessage(207, LogLevel.Information, "Delivered tunnel closed early by the origin")]
    public static partial void DeliveryCancelled(ILogger logger);

    [LoggerMessage(208, LogLevel.Debug, "Drained the predecessor's side of a tunnel: {Ending}")]
    public static partial void DrainEnded(ILogger logger, string ending);

    [LoggerMessage(202, LogLevel.Warning, "Delivered tunnel failed: {Reason}")]
    public static partial void DeliveryFailed(ILogger logger, string reason, Exception? exception);

    [LoggerMessage(203, LogLevel.Information, "Tunnel through {Relays} relays failed at hop {Hop}: {Reason}")]
    public static partial void OriginFailed(ILogger logger, int relays, int hop, string reason);

    [LoggerMessage(204, LogLevel.Information, "Retrying a tunnel on a fresh route after {Reason} (attempt {Attempt})")]
    public static partial void OriginRetry(ILogger logger, string reason, int attempt);

    [LoggerMessage(205, LogLevel.Error, "Unexpected error in a tunnel")]
    public static partial void TunnelBug(ILogger logger, Exception exception);

    [LoggerMessage(300, LogLevel.Information, "Peer {PeerId} is {Status}")]
    public static partial void PeerStatusChanged(ILogger logger, string peerId, string status);

    [LoggerMessage(301, LogLevel.Debug, "Descriptor refused from {Source}: {Reason}")]
    public static partial void DescriptorRejected(ILogger logger, string source, string reason);

    [LoggerMessage(302, LogLevel.Debug, "Endpoint proof for {PeerId} failed: {Reason}")]
    public static partial void ProofFailed(ILogger logger, string peerId, string reason);

    [LoggerMessage(303, LogLevel.Warning, "Seed {Seed} could not be reached: {Reason}")]
    public static partial void SeedUnreachable(ILogger logger, string seed, string reason);

    [LoggerMessage(304, LogLevel.Debug, "Gossip with {PeerId} failed: {Reason}")]
    public static partial void GossipFailed(ILogger logger, string peerId, string reason);

    [LoggerMessage(400, LogLevel.Information, "Onion key epoch {Epoch} is current (valid until {ExpiresAt:u})")]
    public static partial void OnionKeyRotated(ILogger logger, uint epoch, DateTimeOffset expiresAt);

    [LoggerMessage(401, LogLevel.Information, "Onion key epoch {Epoch} retired")]
    public static partial void OnionKeyRetired(ILogger logger, uint epoch);

    [LoggerMessage(402, LogLevel.Information, "Reloaded {Count} onion key epochs with their replay caches")]
    public static partial void OnionKeysReloaded(ILogger logger, int count);

    [LoggerMessage(403, LogLevel.Warning, "Replay cache of epoch {Epoch} is nearly full; rotating early")]
    public static partial void ReplayCacheNearlyFull(ILogger logger, uint epoch);

    [LoggerMessage(404, LogLevel.Error, "Saving onion key state failed; after a restart those epochs will be refused")]
    public static partial void OnionKeySaveFailed(ILogger logger, Exception exception);
}
