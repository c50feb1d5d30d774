using System.Diagnostics.Metrics;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Overlay.Host.Admission;
using Overlay.Host.Options;
using Overlay.Host.Telemetry;
using Overlay.Identity;
using Overlay.Links;

namespace Overlay.Host.Link.Tls;

/// <summary>
/// Checks the certificate on each side of a TLS link (<see cref="LinkCertificate"/>): the server
/// that the dialer is a node, learning its id; the dialer that the server is the node it meant
/// to reach. A refusal is logged (throttled: a stranger can trigger it) and counted on
/// <c>overlay.link.tls.refused</c>.
/// </summary>
internal sealed class LinkPeerVerifier
{
    public const string SideTag = "overlay.link.side";
    public const string ReasonTag = "overlay.link.refusal";

    private readonly TimeSpan _clockSkew;
    private readonly TimeProvider _time;
    private readonly ILogger<LinkPeerVerifier> _logger;
    private readonly WarningThrottle _throttle;
    private readonly Counter<long> _refused;
    private readonly IncomingLinks _incoming;

    public LinkPeerVerifier(IOptions<OverlayOptions> options, IMeterFactory meterFactory, NodeState node, IncomingLinks incoming, TimeProvider time, ILogger<LinkPeerVerifier> logger)
    {
        _incoming = incoming;
        _clockSkew = options.Value.OnionKeys.ClockSkew;
        _time = time;
        _logger = logger;
        _throttle = new WarningThrottle(time, WarningThrottle.PeerInterval);
        _refused = OverlayTelemetry.NodeMeter(meterFactory, node).CreateCounter<long>("overlay.link.tls.refused", "{connection}",
            "Link TLS handshakes refused for the peer's certificate, by overlay.link.side (server: an incoming dialer; client: a dialed node) and overlay.link.refusal");
    }

    /// <summary>Server side: accepts any node's valid certificate and records its id on <paramref name="connection"/>.</summary>
    public bool AcceptDialer(X509Certificate? certificate, ConnectionContext connection)
    {
        var error = LinkCertificate.Verify(AsCertificate2(certificate), _time.GetUtcNow(), _clockSkew, out var id);
        if (error == LinkCertificateError.None)
        {
            connection.Features.Set(new LinkPeerIdentityFeature(id));
            _incoming.Track(id, connection);
            return true;
        }

        var peer = PeerAddress.FairnessKey((connection.RemoteEndPoint as IPEndPoint)?.Address);
        _refused.Add(1, new KeyValuePair<string, object?>(SideTag, "server"), new KeyValuePair<string, object?>(ReasonTag, error.ToTag()));
        if (_throttle.ShouldLog("in " + peer, out var suppressed))
        {
            LinkTlsLog.ClientRefused(_logger, peer, error.Describe(), suppressed);
        }

        return false;
    }

    /// <summary>
    /// Dialer side: accepts the server when its certificate proves <paramref name="expected"/> (any
    /// node when null: a seed or an operator-named endpoint, whose id the proof then checks);
    /// records the proven id in <paramref name="dialed"/>. Throws why otherwise.
    /// </summary>
    public bool AcceptServer(X509Certificate? certificate, Uri endpoint, NodeId? expected, DialedAddress? dialed)
    {
        var now = _time.GetUtcNow();
        var presented = AsCertificate2(certificate);
        NodeId id;
        var error = expected is { } node
            ? LinkCertificate.Verify(presented, node, now, _clockSkew, out id)
            : LinkCertificate.Verify(presented, now, _clockSkew, out id);
        if (error == LinkCertificateError.None)
        {
            dialed?.SetNode(id);
            return true;
        }

        _refused.Add(1, new KeyValuePair<string, object?>(SideTag, "client"), new KeyValuePair<string, object?>(ReasonTag, error.ToTag()));
        if (_throttle.ShouldLog("out " + endpoint.Authority, out var suppressed))
        {
            LinkTlsLog.ServerRefused(_logger, endpoint.ToString(), expected?.ToShortString() ?? "any", error.Describe(), suppressed);
        }

        throw new LinkCertificateRefusedException(endpoint, error);
    }

    private static X509Certificate2? AsCertificate2(X509Certificate? certificate) => certificate switch
    {
        null => null,
        X509Certificate2 certificate2 => certificate2,
        _ => X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()),
    };
}
