using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Overlay.Identity;
using Overlay.Links;

namespace Overlay.Host.Link.Tls;

/// <summary>
/// A throwaway node identity and its link certificate, for a tool that talks to a TLS link
/// endpoint without being a node (the <c>health</c> verb): the endpoint admits only nodes, and
/// identities are free to mint.
/// </summary>
internal sealed class EphemeralLinkCredential : IDisposable
{
    private static readonly TimeSpan Lifetime = TimeSpan.FromDays(1);

    // The node default (Overlay:OnionKeys:ClockSkew): a tool has no configuration of its own.
    private static readonly TimeSpan ClockSkew = TimeSpan.FromMinutes(5);

    private EphemeralLinkCredential(X509Certificate2 certificate) => Certificate = certificate;

    public X509Certificate2 Certificate { get; }

    public static EphemeralLinkCredential Create()
    {
        using var identity = NodeIdentity.Create();
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var now = DateTimeOffset.UtcNow;
        return new EphemeralLinkCredential(LinkCertificate.Create(identity, key, now - LinkCertificateIssuer.Backdate, now + Lifetime));
    }

    /// <summary>True for any node's valid link certificate.</summary>
    public bool AcceptsAnyNode(X509Certificate? presented) =>
        presented is X509Certificate2 certificate && LinkCertificate.Verify(certificate, DateTimeOffset.UtcNow, ClockSkew, out _) == LinkCertificateError.None;

    public void Dispose() => Certificate.Dispose();
}
