using System.Numerics;
using System.Security.Cryptography;
using System.Text;
using NSec.Cryptography;
using Overlay.Reference.Spec;

namespace Overlay.Reference.Vectors;

/// <summary>
/// docs/vectors/v1-link-certificate.json: the node identity extension of docs/protocol.md 3.2,
/// rebuilt byte by byte from the document (no ASN.1 library: the layout table is the encoder).
/// </summary>
public sealed class LinkCertificateVectorTests
{
    private static readonly System.Text.Json.Nodes.JsonObject File = VectorFiles.Load("v1-link-certificate.json");

    private static string Hex(byte[] bytes) => Convert.ToHexStringLower(bytes);

    private static string Field(string name) => (string)File[name]!;

    [Fact]
    public void The_extension_is_rebuilt_from_the_inputs()
    {
        var seed = SHA256.HashData(Encoding.ASCII.GetBytes("overlay/v1 link certificate vector identity"));
        var scalar = SHA256.HashData(Encoding.ASCII.GetBytes("overlay/v1 link certificate vector key"));
        Assert.Equal(Field("identitySeed"), Hex(seed));
        Assert.Equal(Field("p256PrivateScalar"), Hex(scalar));

        using var identity = Key.Import(SignatureAlgorithm.Ed25519, seed, KeyBlobFormat.RawPrivateKey);
        var nodeId = identity.PublicKey.Export(KeyBlobFormat.RawPublicKey);
        Assert.Equal(Field("nodeId"), Hex(nodeId));

        // The point of the scalar, and the SubjectPublicKeyInfo around it as section 3.2 spells it.
        using var p256 = ECDsa.Create(new ECParameters { Curve = ECCurve.NamedCurves.nistP256, D = scalar });
        var point = p256.ExportParameters(includePrivateParameters: false).Q;
        var spki = Bytes.Concat(Convert.FromHexString("3059301306072a8648ce3d020106082a8648ce3d030107034200"), [0x04], point.X!, point.Y!);
        Assert.Equal(Field("subjectPublicKeyInfo"), Hex(spki));

        // The validity as 8-byte big-endian signed Unix seconds each, between the domain and the SPKI.
        var notBefore = DateTimeOffset.Parse(Field("notBefore"), System.Globalization.CultureInfo.InvariantCulture);
        var notAfter = DateTimeOffset.Parse(Field("notAfter"), System.Globalization.CultureInfo.InvariantCulture);
        var message = Bytes.Concat(
            Encoding.ASCII.GetBytes("overlay-link-tls-v2"),
            Bytes.UInt64((ulong)notBefore.ToUnixTimeSeconds()),
            Bytes.UInt64((ulong)notAfter.ToUnixTimeSeconds()),
            spki);
        Assert.Equal(19 + 16 + 91, message.Length);
        Assert.Equal(Field("signedMessage"), Hex(message));

        var signature = SignatureAlgorithm.Ed25519.Sign(identity, message);
        var extension = Bytes.Concat([0x30, 0x67, 0x02, 0x01, 0x02, 0x04, 0x20], nodeId, [0x04, 0x40], signature);
        Assert.Equal(105, extension.Length);
        Assert.Equal(Field("extensionValue"), Hex(extension));
    }

    [Fact]
    public void The_oid_is_the_uuid_arc_and_encodes_as_documented()
    {
        var uuid = BigInteger.Parse("00c1da28df173746299d142f44f5829e9d", System.Globalization.NumberStyles.HexNumber);
        var oid = $"2.25.{uuid}.1";
        Assert.Equal(Field("extensionOid"), oid);

        // X.690: the first two arcs as 40·2 + 25, then each arc in base 128, high bit on all but the last byte.
        var content = new List<byte> { 2 * 40 + 25 };
        foreach (var arc in new[] { uuid, BigInteger.One })
        {
            var groups = new List<byte>();
            var rest = arc;
            do
            {
                groups.Insert(0, (byte)((int)(rest % 128) | (groups.Count == 0 ? 0 : 0x80)));
                rest /= 128;
            }
            while (rest > 0);
            content.AddRange(groups);
        }

        Assert.Equal(Field("extensionOidDer"), Hex([0x06, (byte)content.Count, .. content]));
    }
}
