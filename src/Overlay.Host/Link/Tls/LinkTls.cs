using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Server.Kestrel.Https;

namespace Overlay.Host.Link.Tls;

/// <summary>
/// The TLS settings of a link, both sides: TLS 1.3 only, a node certificate each way, no CA and
/// so no revocation check (<see cref="Overlay.Links.LinkCertificate"/> is the whole proof).
/// </summary>
internal static class LinkTls
{
    /// <summary>Kestrel's per-connection options: our current certificate, the dialer's required and checked by <paramref name="verifier"/>.</summary>
    public static TlsHandshakeCallbackOptions Server(LinkCertificateIssuer issuer, LinkPeerVerifier verifier, TimeSpan handshakeTimeout) => new()
    {
        HandshakeTimeout = handshakeTimeout,
        OnConnection = context =>
        {
            var connection = context.Connection;
            return ValueTask.FromResult(new SslServerAuthenticationOptions
            {
                ServerCertificateContext = issuer.Current.Context,
                ClientCertificateRequired = true,
                EnabledSslProtocols = SslProtocols.Tls13,
                CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
                CertificateChainPolicy = NoCaPolicy(),
                ApplicationProtocols = [SslApplicationProtocol.Http2],
                // Chain errors are expected (self-signed, no CA): the node certificate check replaces them.
                RemoteCertificateValidationCallback = (_, certificate, _, _) => verifier.AcceptDialer(certificate, connection),
            });
        },
    };

    // The platform still builds a chain before our check runs: against an empty custom root store,
    // with no download or revocation lookup, that is a few microseconds instead of a walk through
    // the system's trust store on every handshake (gossip opens one connection per exchange).
    private static X509ChainPolicy NoCaPolicy() => new()
    {
        TrustMode = X509ChainTrustMode.CustomRootTrust,
        RevocationMode = X509RevocationMode.NoCheck,
        DisableCertificateDownloads = true,
    };

    /// <summary>
    /// A dialer's options: presents <paramref name="certificate"/>'s current value (so a long-lived
    /// channel's new connections use the rotated certificate) and accepts the server only when
    /// <paramref name="acceptServer"/> does.
    /// </summary>
    public static SslClientAuthenticationOptions Client(Func<X509Certificate2> certificate, Func<X509Certificate?, bool> acceptServer) => new()
    {
        EnabledSslProtocols = SslProtocols.Tls13,
        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        CertificateChainPolicy = NoCaPolicy(),
        LocalCertificateSelectionCallback = (_, _, _, _, _) => certificate(),
        RemoteCertificateValidationCallback = (_, presented, _, _) => acceptServer(presented),
    };
}
