using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Overlay.Host.Options;
using Overlay.Host.Tunnels;

namespace Overlay.Host.Admission;

/// <summary>
/// What the link endpoint admits from each previous hop (its fairness key,
/// <see cref="Link.PeerAddress.FairnessKey"/>): connections, streams waiting for their header, the
/// header rate and turns at header processing. Every refusal is counted by limit and logged at most
/// once per source per interval.
/// </summary>
internal sealed class LinkAdmission
{
    private readonly AdmissionMetrics _metrics;
    private readonly WarningThrottle _throttle;
    private readonly ILogger<LinkAdmission> _logger;

    public LinkAdmission(IOptions<OverlayOptions> options, AdmissionMetrics metrics, TimeProvider time, ILogger<LinkAdmission> logger)
    {
        var link = options.Value.Link;
        var tunnels = options.Value.Tunnels;
        _metrics = metrics;
        _logger = logger;
        _throttle = new WarningThrottle(time, WarningThrottle.PeerInterval);
        Connections = new KeyedLimiter(link.MaxConnections, link.MaxConnectionsPerPeer);
        PendingHeaders = new KeyedLimiter(tunnels.MaxPendingHeaders, tunnels.MaxPendingHeadersPerPeer);
        HeaderRate = new HeaderRateLimiter(tunnels.HeadersPerSecondPerPeer, tunnels.HeaderBurstPerPeer, time, tunnels.HeadersPerSecond);
        Headers = new FairHeaderScheduler(tunnels.EffectiveHeaderConcurrency, tunnels.MaxHeaderQueuePerPeer);
    }

    /// <summary>Connections open on the link listener.</summary>
    public KeyedLimiter Connections { get; }

    /// <summary>Relay streams accepted whose header has not been processed yet.</summary>
    public KeyedLimiter PendingHeaders { get; }

    /// <summary>New relay streams per second, per key and split between the active keys: over it, streams are held (paced), then refused.</summary>
    public HeaderRateLimiter HeaderRate { get; }

    /// <summary>Turns at header processing.</summary>
    public FairHeaderScheduler Headers { get; }

    /// <summary>Counts a refusal and says so in the log, throttled per source.</summary>
    public void Refused(string source, string limit)
    {
        _metrics.Refused(limit);
        if (_throttle.ShouldLog(source, out var suppressed))
        {
            AdmissionLog.Refused(_logger, source, limit, suppressed);
        }
    }

    /// <summary>Counts a stream its previous hop reset before its header: not an error (an origin may give up), so not logged.</summary>
    public void Abandoned() => _metrics.Abandoned();

    /// <summary>Counts a stream held for its source's header rate.</summary>
    public void Paced() => _metrics.Paced();

    /// <summary>Logs input a peer should never send (throttled per source, no stack trace).</summary>
    public void BadInput(string source, string reason)
    {
        if (_throttle.ShouldLog(source, out var suppressed))
        {
            AdmissionLog.BadInput(_logger, source, reason, suppressed);
        }
    }
}
