using Microsoft.Extensions.Logging;

namespace Overlay.Host.Membership;

/// <summary>Log messages of private-network membership (event ids 350-369).</summary>
internal static partial class MembershipLog
{
    // Throttled per source: any node can call without a membership.
    [LoggerMessage(350, LogLevel.Warning, "Refused a link call {Method} from node {Caller}: {Reason} ({Suppressed} more not logged)")]
    public static partial void CallRefused(ILogger logger, string method, string caller, string reason, long suppressed);

    [LoggerMessage(351, LogLevel.Debug, "Refused the membership of node {PeerId} from {Source}: {Reason}")]
    public static partial void MembershipRefused(ILogger logger, string peerId, string source, string reason);

    [LoggerMessage(352, LogLevel.Information, "This node's membership is set: valid until {NotAfter:o}, signed by authority {Authority}")]
    public static partial void OwnMembershipSet(ILogger logger, DateTime notAfter, string authority);

    [LoggerMessage(353, LogLevel.Warning, "This node has no valid membership of the private network: its peers refuse it until it has one")]
    public static partial void OwnMembershipMissing(ILogger logger);

    [LoggerMessage(354, LogLevel.Information, "Refused to admit node {Caller}: {Reason}")]
    public static partial void JoinRefused(ILogger logger, string caller, string reason);

    [LoggerMessage(355, LogLevel.Information, "Issued a membership to node {PeerId} at {Endpoint}, valid until {NotAfter:o}")]
    public static partial void MembershipIssued(ILogger logger, string peerId, string endpoint, DateTime notAfter);

    [LoggerMessage(356, LogLevel.Warning, "Could not join or renew this node's membership through {Authority}: {Reason}; retrying in {Retry}")]
    public static partial void RenewalFailed(ILogger logger, string authority, string reason, TimeSpan retry);

    [LoggerMessage(357, LogLevel.Debug, "Refused a revocation from {Source}: {Reason}")]
    public static partial void RevocationRefused(ILogger logger, string source, string reason);

    [LoggerMessage(358, LogLevel.Warning, "Node {PeerId} was revoked by authority {Authority}: dropped from the directory, its links closed")]
    public static partial void RevocationLearned(ILogger logger, string peerId, string authority);

    [LoggerMessage(359, LogLevel.Information, "Node {PeerId} was revoked: its admission without a token at this authority is cancelled (an operator may admit it again once the revocation lapses)")]
    public static partial void AdmissionCancelled(ILogger logger, string peerId);

    [LoggerMessage(360, LogLevel.Error, "Node {PeerId} was revoked, but its admission without a token could not be removed from {Path}: remove it there before the revocation lapses")]
    public static partial void AdmissionCancelFailed(ILogger logger, string peerId, string path, Exception exception);
}
