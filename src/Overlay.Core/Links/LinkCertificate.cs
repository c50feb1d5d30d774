using System.Buffers.Binary;
using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Overlay.Identity;

namespace Overlay.Links;

/// <summary>
/// The certificate a node presents on every TLS link, in the pattern of the libp2p TLS handshake:
/// self-signed, for a short-lived ECDSA P-256 key, carrying in a critical extension of the
/// project's own the node's Ed25519 id and that id's signature over the certificate's validity
/// and SubjectPublicKeyInfo (so a leaked link key cannot be re-dated into a new certificate).
/// No CA is involved: the extension is the whole proof. Layout byte by byte in
/// docs/protocol.md ("Link certificates").
/// </summary>
/// <remarks>
/// <code>
/// NodeIdentityExtension ::= SEQUENCE {
///     version    INTEGER (2),
///     nodeId     OCTET STRING (SIZE (32)),   -- Ed25519 public key
///     signature  OCTET STRING (SIZE (64)) }  -- Ed25519 over "overlay-link-tls-v2" || NotBefore || NotAfter || SPKI DER
/// </code>
/// </remarks>
public static class LinkCertificate
{
    /// <summary>
    /// The project's OID arc: a UUID OID (ITU-T X.667, arc 2.25, no registration needed) for the
    /// UUID c1da28df-1737-4629-9d14-2f44f5829e9d.
    /// </summary>
    public const string ArcOid = "2.25.257673752873098720120477424903476387485";

    /// <summary>The node identity extension: the arc's first child.</summary>
    public const string ExtensionOid = ArcOid + ".1";

    /// <summary>
    /// The extension format version this code writes and reads. Version 1 signed the SPKI alone;
    /// 2 signs the validity too, and a version 1 certificate is refused as unsupported.
    /// </summary>
    public const int Version = 2;

    /// <summary>The longest validity period accepted (NotAfter - NotBefore): a link key is rotated, not kept.</summary>
    public static readonly TimeSpan MaxValidity = TimeSpan.FromDays(14);

    /// <summary>The encoded extension's exact size: SEQUENCE header 2, version 3, id 34, signature 66.</summary>
    public const int ExtensionSize = 2 + 3 + 2 + NodeId.Size + 2 + NodeIdentity.SignatureSize;

    // DER of the named curve secp256r1 (1.2.840.10045.3.1.7), the SPKI parameters of a P-256 key.
    private static ReadOnlySpan<byte> P256Parameters => [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

    private const string EcPublicKeyOid = "1.2.840.10045.2.1";

    /// <summary>The domain separator the identity signs before the validity and the SPKI.</summary>
    public static ReadOnlySpan<byte> SignatureDomain => "overlay-link-tls-v2"u8;

    /// <summary>The size of each signed validity bound: a big-endian signed count of Unix seconds.</summary>
    public const int TimeSize = sizeof(long);

    /// <summary>
    /// The bytes the identity signs: <see cref="SignatureDomain"/> || NotBefore || NotAfter ||
    /// <paramref name="subjectPublicKeyInfo"/>, each bound as <see cref="TimeSize"/> bytes of
    /// big-endian signed Unix seconds (X.509 validity holds whole seconds; fractions are dropped).
    /// </summary>
    public static byte[] SignedMessage(DateTimeOffset notBefore, DateTimeOffset notAfter, ReadOnlySpan<byte> subjectPublicKeyInfo)
    {
        var message = new byte[SignatureDomain.Length + (2 * TimeSize) + subjectPublicKeyInfo.Length];
        var span = message.AsSpan();
        SignatureDomain.CopyTo(span);
        span = span[SignatureDomain.Length..];
        BinaryPrimitives.WriteInt64BigEndian(span, notBefore.ToUnixTimeSeconds());
        BinaryPrimitives.WriteInt64BigEndian(span[TimeSize..], notAfter.ToUnixTimeSeconds());
        subjectPublicKeyInfo.CopyTo(span[(2 * TimeSize)..]);
        return message;
    }

    /// <summary>
    /// The DER extension value: <paramref name="identity"/>'s id and its signature over the validity
    /// <paramref name="notBefore"/> to <paramref name="notAfter"/> and <paramref name="subjectPublicKeyInfo"/>.
    /// </summary>
    public static byte[] EncodeExtension(NodeIdentity identity, DateTimeOffset notBefore, DateTimeOffset notAfter, ReadOnlySpan<byte> subjectPublicKeyInfo)
    {
        Span<byte> signature = stackalloc byte[NodeIdentity.SignatureSize];
        identity.Sign(SignedMessage(notBefore, notAfter, subjectPublicKeyInfo), signature);
        var writer = new AsnWriter(AsnEncodingRules.DER);
        using (writer.PushSequence())
        {
            writer.WriteInteger(Version);
            writer.WriteOctetString(identity.Id.AsSpan());
            writer.WriteOctetString(signature);
        }

        return writer.Encode();
    }

    /// <summary>
    /// Reads an extension value: exactly the DER of <see cref="EncodeExtension"/>, nothing more.
    /// The signature is not checked here.
    /// </summary>
    public static LinkCertificateError DecodeExtension(ReadOnlyMemory<byte> value, out NodeId id, out byte[] signature)
    {
        id = default;
        signature = [];
        if (value.Length != ExtensionSize)
        {
            return LinkCertificateError.MalformedExtension;
        }

        try
        {
            var reader = new AsnReader(value, AsnEncodingRules.DER);
            var sequence = reader.ReadSequence();
            reader.ThrowIfNotEmpty();
            if (!sequence.TryReadInt32(out var version))
            {
                return LinkCertificateError.MalformedExtension;
            }

            if (version != Version)
            {
                return LinkCertificateError.UnsupportedVersion;
            }

            // Primitive DER octet strings: read in place, no copy until the sizes are known good.
            if (!sequence.TryReadPrimitiveOctetString(out var idBytes) || !sequence.TryReadPrimitiveOctetString(out var signatureBytes))
            {
                return LinkCertificateError.MalformedExtension;
            }

            sequence.ThrowIfNotEmpty();
            if (idBytes.Length != NodeId.Size || signatureBytes.Length != NodeIdentity.SignatureSize)
            {
                return LinkCertificateError.MalformedExtension;
            }

            id = new NodeId(idBytes.Span);
            signature = signatureBytes.ToArray();
            return LinkCertificateError.None;
        }
        catch (AsnContentException)
        {
            return LinkCertificateError.MalformedExtension;
        }
    }

    /// <summary>
    /// A self-signed certificate for <paramref name="key"/> (ECDSA P-256), valid from
    /// <paramref name="notBefore"/> to <paramref name="notAfter"/>, carrying <paramref name="identity"/>'s
    /// extension. The certificate holds the private key (for TLS); dispose it when retired.
    /// </summary>
    public static X509Certificate2 Create(NodeIdentity identity, ECDsa key, DateTimeOffset notBefore, DateTimeOffset notAfter)
    {
        ArgumentNullException.ThrowIfNull(identity);
        ArgumentNullException.ThrowIfNull(key);
        if (notAfter <= notBefore || notAfter - notBefore > MaxValidity)
        {
            throw new ArgumentOutOfRangeException(nameof(notAfter), $"a link certificate is valid for more than zero and at most {MaxValidity.TotalDays} days");
        }

        // The certificate holds whole seconds: sign and issue the same truncated bounds.
        notBefore = WholeSeconds(notBefore);
        notAfter = WholeSeconds(notAfter);

        // The name says nothing about the node: the extension is the identity, and TLS 1.3 encrypts the certificate anyway.
        var request = new CertificateRequest("CN=overlay-link", key, HashAlgorithmName.SHA256);
        var spki = key.ExportSubjectPublicKeyInfo();
        request.CertificateExtensions.Add(new X509Extension(ExtensionOid, EncodeExtension(identity, notBefore, notAfter, spki), critical: true));
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        return request.CreateSelfSigned(notBefore, notAfter);
    }

    /// <summary>
    /// Checks that <paramref name="certificate"/> proves a node identity at <paramref name="now"/>
    /// (with <paramref name="clockSkew"/> either way) and gives its id. Expiry is checked here
    /// because accepting a self-signed chain turns off the platform's own checks.
    /// </summary>
    public static LinkCertificateError Verify(X509Certificate2? certificate, DateTimeOffset now, TimeSpan clockSkew, out NodeId id)
    {
        id = default;
        if (certificate is null)
        {
            return LinkCertificateError.Missing;
        }

        var publicKey = certificate.PublicKey;
        if (publicKey.Oid.Value != EcPublicKeyOid || publicKey.EncodedParameters?.RawData is not { } parameters || !parameters.AsSpan().SequenceEqual(P256Parameters))
        {
            return LinkCertificateError.WrongKeyType;
        }

        // From the DER, not X509Certificate2.NotBefore/NotAfter: those are local times, and a
        // conversion back through a daylight-saving change would not give the signed second.
        if (!TryReadValidity(certificate.RawDataMemory, out var notBefore, out var notAfter))
        {
            return LinkCertificateError.MalformedCertificate;
        }

        if (notAfter - notBefore > MaxValidity)
        {
            return LinkCertificateError.ValidityTooLong;
        }

        if (now + clockSkew < notBefore)
        {
            return LinkCertificateError.NotYetValid;
        }

        if (now - clockSkew > notAfter)
        {
            return LinkCertificateError.Expired;
        }

        X509Extension? extension = null;
        foreach (var candidate in certificate.Extensions)
        {
            if (candidate.Oid?.Value == ExtensionOid)
            {
                if (extension is not null)
                {
                    return LinkCertificateError.MalformedExtension;
                }

                extension = candidate;
            }
        }

        if (extension is null)
        {
            return LinkCertificateError.MissingExtension;
        }

        if (!extension.Critical)
        {
            return LinkCertificateError.MalformedExtension;
        }

        var decoded = DecodeExtension(extension.RawData, out var claimed, out var signature);
        if (decoded != LinkCertificateError.None)
        {
            return decoded;
        }

        if (!NodeIdentity.Verify(claimed, SignedMessage(notBefore, notAfter, publicKey.ExportSubjectPublicKeyInfo()), signature))
        {
            return LinkCertificateError.BadSignature;
        }

        id = claimed;
        return LinkCertificateError.None;
    }

    /// <summary>
    /// <see cref="Verify(X509Certificate2?, DateTimeOffset, TimeSpan, out NodeId)"/>, then that the
    /// proven id is <paramref name="expected"/> (compared in constant time).
    /// </summary>
    public static LinkCertificateError Verify(X509Certificate2? certificate, NodeId expected, DateTimeOffset now, TimeSpan clockSkew, out NodeId id)
    {
        var error = Verify(certificate, now, clockSkew, out id);
        if (error == LinkCertificateError.None && !CryptographicOperations.FixedTimeEquals(id.AsSpan(), expected.AsSpan()))
        {
            return LinkCertificateError.WrongNode;
        }

        return error;
    }

    private static DateTimeOffset WholeSeconds(DateTimeOffset time) =>
        DateTimeOffset.FromUnixTimeSeconds(time.ToUnixTimeSeconds());

    /// <summary>The validity of an X.509 certificate, read from its DER (RFC 5280 4.1: the fifth field of TBSCertificate).</summary>
    private static bool TryReadValidity(ReadOnlyMemory<byte> der, out DateTimeOffset notBefore, out DateTimeOffset notAfter)
    {
        notBefore = notAfter = default;
        try
        {
            var certificate = new AsnReader(der, AsnEncodingRules.DER).ReadSequence();
            var tbs = certificate.ReadSequence();
            var explicitVersion = new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true);
            if (tbs.PeekTag().HasSameClassAndValue(explicitVersion))
            {
                tbs.ReadEncodedValue();
            }

            tbs.ReadEncodedValue(); // serialNumber
            tbs.ReadEncodedValue(); // signature AlgorithmIdentifier
            tbs.ReadEncodedValue(); // issuer
            var validity = tbs.ReadSequence();
            notBefore = ReadTime(validity);
            notAfter = ReadTime(validity);
            validity.ThrowIfNotEmpty();
            return true;
        }
        catch (AsnContentException)
        {
            return false;
        }
    }

    // Time ::= CHOICE { utcTime UTCTime, generalTime GeneralizedTime }
    private static DateTimeOffset ReadTime(AsnReader reader) =>
        reader.PeekTag().HasSameClassAndValue(Asn1Tag.UtcTime) ? reader.ReadUtcTime() : reader.ReadGeneralizedTime();
}
