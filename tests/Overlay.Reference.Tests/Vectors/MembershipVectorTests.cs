using System.Security.Cryptography;
using System.Text;
using NSec.Cryptography;
using Overlay.Reference.Spec;

namespace Overlay.Reference.Vectors;

/// <summary>
/// docs/vectors/v1-membership.json: a membership of a private network (docs/protocol.md 4.1),
/// rebuilt byte by byte from the layout table.
/// </summary>
public sealed class MembershipVectorTests
{
    private static readonly System.Text.Json.Nodes.JsonObject File = VectorFiles.Load("v1-membership.json");

    private static string Field(string name) => (string)File[name]!;

    [Fact]
    public void The_membership_is_rebuilt_from_the_inputs()
    {
        var authoritySeed = SHA256.HashData(Encoding.ASCII.GetBytes("overlay/v1 membership vector authority"));
        var nodeSeed = SHA256.HashData(Encoding.ASCII.GetBytes("overlay/v1 membership vector node"));
        Assert.Equal(Field("authoritySeed"), Bytes.ToHex(authoritySeed));
        Assert.Equal(Field("nodeSeed"), Bytes.ToHex(nodeSeed));

        using var authority = Key.Import(SignatureAlgorithm.Ed25519, authoritySeed, KeyBlobFormat.RawPrivateKey);
        using var node = Key.Import(SignatureAlgorithm.Ed25519, nodeSeed, KeyBlobFormat.RawPrivateKey);
        var authorityKey = authority.PublicKey.Export(KeyBlobFormat.RawPublicKey);
        var nodeId = node.PublicKey.Export(KeyBlobFormat.RawPublicKey);
        Assert.Equal(Field("authorityKey"), Bytes.ToHex(authorityKey));
        Assert.Equal(Field("nodeId"), Bytes.ToHex(nodeId));

        var notBefore = DateTimeOffset.Parse(Field("notBefore"), System.Globalization.CultureInfo.InvariantCulture);
        var notAfter = DateTimeOffset.Parse(Field("notAfter"), System.Globalization.CultureInfo.InvariantCulture);
        var endpoint = Encoding.UTF8.GetBytes(Field("endpoint"));
        var fields = Bytes.Concat(
            [1],
            authorityKey,
            nodeId,
            Bytes.UInt64((ulong)notBefore.ToUnixTimeSeconds()),
            Bytes.UInt64((ulong)notAfter.ToUnixTimeSeconds()),
            [(byte)endpoint.Length],
            endpoint);
        Assert.Equal(82 + endpoint.Length, fields.Length);

        var message = Bytes.Concat(Encoding.ASCII.GetBytes("overlay-membership-v1"), fields);
        Assert.Equal(Field("signedMessage"), Bytes.ToHex(message));

        var signature = SignatureAlgorithm.Ed25519.Sign(authority, message);
        Assert.Equal(Field("membership"), Bytes.ToHex(Bytes.Concat(fields, signature)));
        Assert.True(SignatureAlgorithm.Ed25519.Verify(authority.PublicKey, message, signature));
    }

    [Fact]
    public void The_revocation_is_rebuilt_from_the_inputs()
    {
        var revocationFile = VectorFiles.Load("v1-revocation.json");
        string Get(string name) => (string)revocationFile[name]!;
        var authoritySeed = SHA256.HashData(Encoding.ASCII.GetBytes("overlay/v1 membership vector authority"));
        using var authority = Key.Import(SignatureAlgorithm.Ed25519, authoritySeed, KeyBlobFormat.RawPrivateKey);
        var authorityKey = authority.PublicKey.Export(KeyBlobFormat.RawPublicKey);
        Assert.Equal(Get("authorityKey"), Bytes.ToHex(authorityKey));

        var revokedAt = DateTimeOffset.Parse(Get("revokedAt"), System.Globalization.CultureInfo.InvariantCulture);
        var until = DateTimeOffset.Parse(Get("until"), System.Globalization.CultureInfo.InvariantCulture);
        var fields = Bytes.Concat(
            [1],
            authorityKey,
            Bytes.FromHex(Get("nodeId")),
            Bytes.UInt64((ulong)revokedAt.ToUnixTimeSeconds()),
            Bytes.UInt64((ulong)until.ToUnixTimeSeconds()));
        Assert.Equal(81, fields.Length);

        var message = Bytes.Concat(Encoding.ASCII.GetBytes("overlay-revocation-v1"), fields);
        Assert.Equal(Get("signedMessage"), Bytes.ToHex(message));
        Assert.Equal(Get("revocation"), Bytes.ToHex(Bytes.Concat(fields, SignatureAlgorithm.Ed25519.Sign(authority, message))));
    }
}
