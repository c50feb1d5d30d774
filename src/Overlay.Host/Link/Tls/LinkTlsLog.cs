using Microsoft.Extensions.Logging;

namespace Overlay.Host.Link.Tls;

/// <summary>Log messages of TLS links (event ids 340-349).</summary>
internal static partial class LinkTlsLog
{
    [LoggerMessage(340, LogLevel.Debug, "Issued a link certificate valid until {NotAfter:o}, to be rotated at {RotateAt:o}")]
    public static partial void CertificateIssued(ILogger logger, DateTime notAfter, DateTime rotateAt);

    // Throttled per address block: any stranger can present a bad certificate.
    [LoggerMessage(341, LogLevel.Warning, "Refused an incoming link connection from {Peer}: {Reason} ({Suppressed} more not logged)")]
    public static partial void ClientRefused(ILogger logger, string peer, string reason, long suppressed);

    [LoggerMessage(342, LogLevel.Warning, "Refused the link to {Endpoint} (expected node {Expected}): {Reason} ({Suppressed} more not logged)")]
    public static partial void ServerRefused(ILogger logger, string endpoint, string expected, string reason, long suppressed);
}
