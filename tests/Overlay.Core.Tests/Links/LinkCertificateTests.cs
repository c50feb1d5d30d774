using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using Overlay.Identity;
using Overlay.Links;
using Overlay.Tests.Identity;
using Overlay.Tests.Vectors;

namespace Overlay.Tests.Links;

public sealed class LinkCertificateTests : IDisposable
{
    private static readonly DateTimeOffset Now = new(2026, 6, 1, 12, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan Skew = TimeSpan.FromMinutes(5);

    // The validity of the certificates WithExtension builds, which their extensions sign.
    private static readonly DateTimeOffset NotBefore = Now.AddHours(-1);
    private static readonly DateTimeOffset NotAfter = Now.AddDays(2);

    private readonly NodeIdentity _identity = NodeIdentity.Create();
    private readonly ECDsa _key = ECDsa.Create(ECCurve.NamedCurves.nistP256);

    public void Dispose()
    {
        _identity.Dispose();
        _key.Dispose();
    }

    [Fact]
    public void A_certificate_proves_its_node_id_through_a_DER_round_trip()
    {
        using var issued = LinkCertificate.Create(_identity, _key, Now.AddHours(-1), Now.AddDays(2));
        // As a peer receives it: the DER only, no private key.
        using var received = X509CertificateLoader.LoadCertificate(issued.RawData);

        Assert.Equal(LinkCertificateError.None, LinkCertificate.Verify(received, Now, Skew, out var id));
        Assert.Equal(_identity.Id, id);
        Assert.Equal(LinkCertificateError.None, LinkCertificate.Verify(received, _identity.Id, Now, Skew, out _));
        Assert.True(received.Extensions[LinkCertificate.ExtensionOid]!.Critical);
    }

    [Fact]
    public void Another_node_id_than_the_one_dialed_is_refused()
    {
        using var other = NodeIdentity.Create();
        using var certificate = LinkCertificate.Create(_identity, _key, Now.AddHours(-1), Now.AddDays(2));

        Assert.Equal(LinkCertificateError.WrongNode, LinkCertificate.Verify(certificate, other.Id, Now, Skew, out _));
    }

    [Fact]
    public void A_certificate_without_the_extension_is_refused()
    {
        var request = new CertificateRequest("CN=overlay-link", _key, HashAlgorithmName.SHA256);
        using var certificate = request.CreateSelfSigned(Now.AddHours(-1), Now.AddDays(2));

        Assert.Equal(LinkCertificateError.MissingExtension, LinkCertificate.Verify(certificate, Now, Skew, out var id));
        Assert.True(id.IsNone);
        Assert.Equal(LinkCertificateError.Missing, LinkCertificate.Verify(null, Now, Skew, out _));
    }

    [Fact]
    public void An_extension_copied_from_another_key_does_not_verify()
    {
        // An attacker with its own TLS key replays a real node's extension to pose as that node.
        using var victimKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var stolen = LinkCertificate.EncodeExtension(_identity, NotBefore, NotAfter, victimKey.ExportSubjectPublicKeyInfo());
        using var certificate = WithExtension(_key, new X509Extension(LinkCertificate.ExtensionOid, stolen, critical: true));

        Assert.Equal(LinkCertificateError.BadSignature, LinkCertificate.Verify(certificate, Now, Skew, out _));
    }

    [Fact]
    public void An_extension_with_a_flipped_signature_bit_does_not_verify()
    {
        var value = LinkCertificate.EncodeExtension(_identity, NotBefore, NotAfter, _key.ExportSubjectPublicKeyInfo());
        value[^1] ^= 1;
        using var certificate = WithExtension(_key, new X509Extension(LinkCertificate.ExtensionOid, value, critical: true));

        Assert.Equal(LinkCertificateError.BadSignature, LinkCertificate.Verify(certificate, Now, Skew, out _));
    }

    [Fact]
    public void Validity_is_checked_here_with_the_allowed_skew_either_way()
    {
        using var certificate = LinkCertificate.Create(_identity, _key, Now, Now.AddDays(1));

        Assert.Equal(LinkCertificateError.None, LinkCertificate.Verify(certificate, Now - Skew, Skew, out _));
        Assert.Equal(LinkCertificateError.NotYetValid, LinkCertificate.Verify(certificate, Now - Skew - TimeSpan.FromSeconds(1), Skew, out _));
        Assert.Equal(LinkCertificateError.None, LinkCertificate.Verify(certificate, Now.AddDays(1) + Skew, Skew, out _));
        Assert.Equal(LinkCertificateError.Expired, LinkCertificate.Verify(certificate, Now.AddDays(1) + Skew + TimeSpan.FromSeconds(1), Skew, out _));
    }

    [Fact]
    public void A_certificate_re_dated_after_signing_is_refused()
    {
        // A leaked link key and its extension, put in a new certificate with a later validity.
        using var issued = LinkCertificate.Create(_identity, _key, Now.AddHours(-1), Now.AddDays(1));
        var extension = issued.Extensions[LinkCertificate.ExtensionOid]!;
        var request = new CertificateRequest("CN=overlay-link", _key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509Extension(LinkCertificate.ExtensionOid, extension.RawData, critical: true));
        using var redated = request.CreateSelfSigned(Now.AddDays(30), Now.AddDays(31));

        Assert.Equal(LinkCertificateError.BadSignature, LinkCertificate.Verify(redated, Now.AddDays(30).AddHours(1), Skew, out var id));
        Assert.True(id.IsNone);
    }

    [Fact]
    public void Validity_with_fractions_of_a_second_is_signed_as_the_certificate_carries_it()
    {
        // X.509 validity holds whole seconds: the signed validity must be the truncated one.
        var notBefore = Now.AddHours(-1).AddMilliseconds(750);
        using var certificate = LinkCertificate.Create(_identity, _key, notBefore, Now.AddDays(1).AddMilliseconds(250));
        using var received = X509CertificateLoader.LoadCertificate(certificate.RawData);

        Assert.Equal(LinkCertificateError.None, LinkCertificate.Verify(received, Now, Skew, out _));
    }

    [Fact]
    public void A_long_lived_certificate_is_refused_and_not_issued()
    {
        var value = LinkCertificate.EncodeExtension(_identity, NotBefore, NotAfter, _key.ExportSubjectPublicKeyInfo());
        var request = new CertificateRequest("CN=overlay-link", _key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509Extension(LinkCertificate.ExtensionOid, value, critical: true));
        using var certificate = request.CreateSelfSigned(Now.AddDays(-1), Now.AddYears(1));

        Assert.Equal(LinkCertificateError.ValidityTooLong, LinkCertificate.Verify(certificate, Now, Skew, out _));
        Assert.Throws<ArgumentOutOfRangeException>(() => LinkCertificate.Create(_identity, _key, Now, Now + LinkCertificate.MaxValidity + TimeSpan.FromSeconds(1)));
    }

    [Fact]
    public void A_key_other_than_P256_is_refused()
    {
        using var p384 = ECDsa.Create(ECCurve.NamedCurves.nistP384);
        var value = LinkCertificate.EncodeExtension(_identity, NotBefore, NotAfter, p384.ExportSubjectPublicKeyInfo());
        using var certificate = WithExtension(p384, new X509Extension(LinkCertificate.ExtensionOid, value, critical: true));

        Assert.Equal(LinkCertificateError.WrongKeyType, LinkCertificate.Verify(certificate, Now, Skew, out _));
    }

    [Fact]
    public void A_non_critical_extension_is_malformed()
    {
        var value = LinkCertificate.EncodeExtension(_identity, NotBefore, NotAfter, _key.ExportSubjectPublicKeyInfo());
        using var nonCritical = WithExtension(_key, new X509Extension(LinkCertificate.ExtensionOid, value, critical: false));
        Assert.Equal(LinkCertificateError.MalformedExtension, LinkCertificate.Verify(nonCritical, Now, Skew, out _));
    }

    [Fact]
    public void Only_the_exact_DER_layout_decodes()
    {
        var value = LinkCertificate.EncodeExtension(_identity, NotBefore, NotAfter, _key.ExportSubjectPublicKeyInfo());
        Assert.Equal(LinkCertificate.ExtensionSize, value.Length);
        Assert.Equal(LinkCertificateError.None, LinkCertificate.DecodeExtension(value, out var id, out var signature));
        Assert.Equal(_identity.Id, id);
        Assert.Equal(NodeIdentity.SignatureSize, signature.Length);

        Assert.Equal(LinkCertificateError.MalformedExtension, LinkCertificate.DecodeExtension(value.AsMemory(..^1), out _, out _));
        Assert.Equal(LinkCertificateError.MalformedExtension, LinkCertificate.DecodeExtension((byte[])[.. value, 0], out _, out _));

        var version1 = (byte[])value.Clone();
        version1[4] = 1; // 30 67 02 01 [02]: version 1 signed no validity
        Assert.Equal(LinkCertificateError.UnsupportedVersion, LinkCertificate.DecodeExtension(version1, out _, out _));

        // The same fields with a short node id and a padded signature: right total size, wrong layout.
        var writer = new AsnWriter(AsnEncodingRules.DER);
        using (writer.PushSequence())
        {
            writer.WriteInteger(LinkCertificate.Version);
            writer.WriteOctetString(new byte[NodeId.Size - 1]);
            writer.WriteOctetString(new byte[NodeIdentity.SignatureSize + 1]);
        }

        Assert.Equal(LinkCertificateError.MalformedExtension, LinkCertificate.DecodeExtension(writer.Encode(), out _, out _));

        var notASequence = (byte[])value.Clone();
        notASequence[0] = 0x31; // a SET
        Assert.Equal(LinkCertificateError.MalformedExtension, LinkCertificate.DecodeExtension(notASequence, out _, out _));
    }

    [Fact]
    public void Extension_matches_the_published_vector()
    {
        // Inputs fixed by docs/vectors/v1-link-certificate.json: an identity seed, a P-256 private scalar and the validity.
        var seed = SHA256.HashData("overlay/v1 link certificate vector identity"u8);
        var scalar = SHA256.HashData("overlay/v1 link certificate vector key"u8);
        using var temp = new TempDirectory();
        using var identity = SeededIdentity.Load(temp, seed);
        using var key = ECDsa.Create(new ECParameters { Curve = ECCurve.NamedCurves.nistP256, D = scalar });
        var spki = key.ExportSubjectPublicKeyInfo();
        var extension = LinkCertificate.EncodeExtension(identity, NotBefore, NotAfter, spki);
        using var certificate = WithExtension(key, new X509Extension(LinkCertificate.ExtensionOid, extension, critical: true));

        Assert.Equal(LinkCertificateError.None, LinkCertificate.Verify(certificate, Now, Skew, out var id));
        Assert.Equal(identity.Id, id);
        VectorFile.MatchOrWrite("v1-link-certificate.json", new JsonObject
        {
            ["extensionOid"] = LinkCertificate.ExtensionOid,
            ["extensionOidDer"] = VectorFile.Hex(OidDer(LinkCertificate.ExtensionOid)),
            ["identitySeed"] = VectorFile.Hex(seed),
            ["nodeId"] = VectorFile.Hex(identity.Id.AsSpan()),
            ["p256PrivateScalar"] = VectorFile.Hex(scalar),
            ["notBefore"] = NotBefore.ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture),
            ["notAfter"] = NotAfter.ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture),
            ["subjectPublicKeyInfo"] = VectorFile.Hex(spki),
            ["signedMessage"] = VectorFile.Hex(LinkCertificate.SignedMessage(NotBefore, NotAfter, spki)),
            ["extensionValue"] = VectorFile.Hex(extension),
        });
    }

    private static X509Certificate2 WithExtension(ECDsa key, X509Extension extension)
    {
        var request = new CertificateRequest("CN=overlay-link", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(extension);
        return request.CreateSelfSigned(NotBefore, NotAfter);
    }

    private static byte[] OidDer(string oid)
    {
        var writer = new AsnWriter(AsnEncodingRules.DER);
        writer.WriteObjectIdentifier(oid);
        return writer.Encode();
    }
}
