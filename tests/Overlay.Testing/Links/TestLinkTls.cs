using System.Buffers.Binary;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Grpc.Net.Client;
using Overlay.Identity;

namespace Overlay.Testing.Links;

/// <summary>
/// TLS for the tests' raw clients, which must present a node certificate to a TLS link endpoint
/// as any dialer must. The certificate is built here from docs/protocol.md 3.2 by hand (the
/// extension's DER written byte by byte), sharing no code with the node's certificate handling;
/// the server's certificate is not checked (a raw client plays a stranger, not a careful node).
/// </summary>
internal static class TestLinkTls
{
    /// <summary>The node identity extension's OID (docs/protocol.md 3.2).</summary>
    public const string ExtensionOid = "2.25.257673752873098720120477424903476387485.1";

    private static readonly Lazy<(NodeIdentity Identity, X509Certificate2 Certificate)> Client = new(() =>
    {
        var identity = NodeIdentity.Create();
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        return (identity, Certificate(identity, key, DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddDays(1)));
    });

    /// <summary>The node id the raw clients' certificate proves.</summary>
    public static NodeId ClientId => Client.Value.Identity.Id;

    /// <summary>
    /// A self-signed P-256 certificate whose extension claims <paramref name="claimed"/> (default
    /// <paramref name="identity"/>'s id) with <paramref name="identity"/>'s signature over the validity and the SPKI.
    /// </summary>
    public static X509Certificate2 Certificate(NodeIdentity identity, ECDsa key, DateTimeOffset notBefore, DateTimeOffset notAfter,
        bool withExtension = true, NodeId? claimed = null)
    {
        // Whole seconds, as the certificate holds them and the extension signs them.
        notBefore = DateTimeOffset.FromUnixTimeSeconds(notBefore.ToUnixTimeSeconds());
        notAfter = DateTimeOffset.FromUnixTimeSeconds(notAfter.ToUnixTimeSeconds());
        var request = new CertificateRequest("CN=overlay-link", key, HashAlgorithmName.SHA256);
        if (withExtension)
        {
            var spki = key.ExportSubjectPublicKeyInfo();
            var signature = new byte[NodeIdentity.SignatureSize];
            Span<byte> validity = stackalloc byte[16];
            BinaryPrimitives.WriteInt64BigEndian(validity, notBefore.ToUnixTimeSeconds());
            BinaryPrimitives.WriteInt64BigEndian(validity[8..], notAfter.ToUnixTimeSeconds());
            identity.Sign([.. Encoding.ASCII.GetBytes("overlay-link-tls-v2"), .. validity, .. spki], signature);
            byte[] value = [0x30, 0x67, 0x02, 0x01, 0x02, 0x04, 0x20, .. (claimed ?? identity.Id).AsSpan(), 0x04, 0x40, .. signature];
            request.CertificateExtensions.Add(new X509Extension(ExtensionOid, value, critical: true));
        }

        return request.CreateSelfSigned(notBefore, notAfter);
    }

    /// <summary>TLS options presenting <paramref name="certificate"/> (default: the raw clients' own) and accepting any server.</summary>
    public static SslClientAuthenticationOptions Options(X509Certificate2? certificate = null)
    {
        var presented = certificate ?? Client.Value.Certificate;
        return new SslClientAuthenticationOptions
        {
            EnabledSslProtocols = SslProtocols.Tls13,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            LocalCertificateSelectionCallback = (_, _, _, _, _) => presented,
            RemoteCertificateValidationCallback = (_, _, _, _) => true,
        };
    }

    /// <summary><paramref name="handler"/> (a plain one by default), set up for TLS when <paramref name="endpoint"/> is https.</summary>
    public static SocketsHttpHandler Handler(Uri endpoint, SocketsHttpHandler? handler = null)
    {
        handler ??= new SocketsHttpHandler { UseProxy = false, ActivityHeadersPropagator = null };
        if (endpoint.Scheme == Uri.UriSchemeHttps)
        {
            handler.SslOptions = Options();
        }

        return handler;
    }

    /// <summary>A gRPC channel to a link endpoint, presenting a node certificate over TLS.</summary>
    public static GrpcChannel Channel(Uri endpoint, SocketsHttpHandler? handler = null) =>
        GrpcChannel.ForAddress(endpoint, new GrpcChannelOptions { HttpHandler = Handler(endpoint, handler), DisposeHttpClient = true });
}
