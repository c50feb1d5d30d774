using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Overlay.Host.Link.Tls;

/// <summary>One issued link certificate (with its private key), ready for TLS, and when it is due for rotation.</summary>
internal sealed class LinkCredential(X509Certificate2 certificate, DateTimeOffset rotateAt) : IDisposable
{
    public X509Certificate2 Certificate { get; } = certificate;

    /// <summary>Built once: a server handshake then needs no chain work for our own certificate.</summary>
    public SslStreamCertificateContext Context { get; } = SslStreamCertificateContext.Create(certificate, additionalCertificates: null, offline: true);

    public DateTimeOffset RotateAt { get; } = rotateAt;

    public void Dispose() => Certificate.Dispose();
}
