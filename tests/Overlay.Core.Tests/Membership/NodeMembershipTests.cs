using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Overlay.Identity;
using Overlay.Membership;
using Overlay.Tests.Identity;
using Overlay.Tests.Vectors;

namespace Overlay.Tests.Membership;

public sealed class NodeMembershipTests : IDisposable
{
    private static readonly DateTimeOffset Now = new(2026, 6, 1, 12, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan Skew = TimeSpan.FromMinutes(5);
    private static readonly Uri Endpoint = new("https://node1.example:7400");

    private readonly NodeIdentity _authority = NodeIdentity.Create();
    private readonly NodeIdentity _node = NodeIdentity.Create();

    public void Dispose()
    {
        _authority.Dispose();
        _node.Dispose();
    }

    private HashSet<NodeId> Authorities => [_authority.Id];

    private NodeMembership Issue(DateTimeOffset? notBefore = null, DateTimeOffset? notAfter = null, NodeIdentity? authority = null) =>
        NodeMembership.Issue(authority ?? _authority, _node.Id, Endpoint, notBefore ?? Now.AddHours(-1), notAfter ?? Now.AddHours(23));

    [Fact]
    public void A_membership_round_trips_and_names_its_node_and_endpoint()
    {
        var issued = Issue();

        Assert.Equal(MembershipError.None, NodeMembership.TryParse(issued.Encoded.Span, Authorities, Now, Skew, out var parsed));
        Assert.Equal(_node.Id, parsed!.Node);
        Assert.Equal(_authority.Id, parsed.Authority);
        Assert.Equal(Endpoint, parsed.Endpoint);
        Assert.Equal(Now.AddHours(23), parsed.NotAfter);
        Assert.True(parsed.Names(_node.Id, Endpoint));
        Assert.False(parsed.Names(_authority.Id, Endpoint));
        Assert.False(parsed.Names(_node.Id, new Uri("https://node2.example:7400")));
        Assert.Equal(NodeMembership.FixedSize + Endpoint.OriginalString.Length, issued.Encoded.Length);
    }

    [Fact]
    public void A_membership_signed_by_a_key_that_is_no_authority_is_refused()
    {
        using var forger = NodeIdentity.Create();
        var forged = Issue(authority: forger);

        Assert.Equal(MembershipError.UnknownAuthority, NodeMembership.TryParse(forged.Encoded.Span, Authorities, Now, Skew, out var parsed));
        Assert.Null(parsed);
    }

    [Fact]
    public void A_forged_membership_naming_the_authority_does_not_verify()
    {
        // Another key's signature under the authority's name: the authority field is swapped in.
        using var forger = NodeIdentity.Create();
        var forged = Issue(authority: forger).Encoded.ToArray();
        _authority.Id.CopyTo(forged.AsSpan(1));

        Assert.Equal(MembershipError.BadSignature, NodeMembership.TryParse(forged, Authorities, Now, Skew, out _));
    }

    // Offsets into the layout (a negative one counts from the end): version, authority, node, NotBefore, NotAfter, endpoint length, endpoint, signature.
    public static TheoryData<int> ChangedOffsets() => [0, 1, 33, 65, 73, 81, 82, -1];

    [Theory]
    [MemberData(nameof(ChangedOffsets))]
    public void A_changed_byte_anywhere_is_refused(int offset)
    {
        var encoded = Issue().Encoded.ToArray();
        encoded[offset < 0 ? encoded.Length + offset : offset] ^= 0x01;

        Assert.NotEqual(MembershipError.None, NodeMembership.TryParse(encoded, Authorities, Now, Skew, out _));
    }

    [Fact]
    public void A_membership_re_dated_after_signing_is_refused()
    {
        var encoded = Issue().Encoded.ToArray();
        System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(encoded.AsSpan(73), Now.AddDays(3).ToUnixTimeSeconds());

        Assert.Equal(MembershipError.BadSignature, NodeMembership.TryParse(encoded, Authorities, Now, Skew, out _));
    }

    [Fact]
    public void Validity_is_checked_with_the_allowed_skew_either_way()
    {
        var membership = Issue(Now, Now.AddDays(1));
        var encoded = membership.Encoded.Span;

        Assert.Equal(MembershipError.None, NodeMembership.TryParse(encoded, Authorities, Now - Skew, Skew, out _));
        Assert.Equal(MembershipError.NotYetValid, NodeMembership.TryParse(encoded, Authorities, Now - Skew - TimeSpan.FromSeconds(1), Skew, out _));
        Assert.Equal(MembershipError.None, NodeMembership.TryParse(encoded, Authorities, Now.AddDays(1) + Skew, Skew, out _));
        Assert.Equal(MembershipError.Expired, NodeMembership.TryParse(encoded, Authorities, Now.AddDays(1) + Skew + TimeSpan.FromSeconds(1), Skew, out _));
        Assert.False(membership.IsValidAt(Now.AddDays(1) + Skew + TimeSpan.FromSeconds(1), Skew));
        Assert.True(membership.IsValidAt(Now, Skew));
    }

    [Fact]
    public void Lengths_versions_and_long_validity_are_refused_before_the_signature()
    {
        var encoded = Issue().Encoded.ToArray();
        Assert.Equal(MembershipError.Malformed, NodeMembership.TryParse(encoded.AsSpan(..^1), Authorities, Now, Skew, out _));
        Assert.Equal(MembershipError.Malformed, NodeMembership.TryParse([.. encoded, 0], Authorities, Now, Skew, out _));
        Assert.Equal(MembershipError.Malformed, NodeMembership.TryParse(new byte[NodeMembership.MaxSize + 1], Authorities, Now, Skew, out _));

        var version2 = (byte[])encoded.Clone();
        version2[0] = 2;
        Assert.Equal(MembershipError.UnsupportedVersion, NodeMembership.TryParse(version2, Authorities, Now, Skew, out _));

        var badEndpoint = (byte[])encoded.Clone();
        badEndpoint[82] = (byte)' ';
        Assert.Equal(MembershipError.InvalidEndpoint, NodeMembership.TryParse(badEndpoint, Authorities, Now, Skew, out _));

        var longLived = (byte[])encoded.Clone();
        System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(longLived.AsSpan(73), Now.AddDays(30).ToUnixTimeSeconds());
        Assert.Equal(MembershipError.BadValidity, NodeMembership.TryParse(longLived, Authorities, Now, Skew, out _));
        Assert.Throws<ArgumentOutOfRangeException>(() => Issue(Now, Now + NodeMembership.MaxValidity + TimeSpan.FromSeconds(1)));
    }

    [Fact]
    public void Membership_matches_the_published_vector()
    {
        var authoritySeed = SHA256.HashData("overlay/v1 membership vector authority"u8);
        var nodeSeed = SHA256.HashData("overlay/v1 membership vector node"u8);
        using var authorityDirectory = new TempDirectory();
        using var nodeDirectory = new TempDirectory();
        using var authority = SeededIdentity.Load(authorityDirectory, authoritySeed);
        using var node = SeededIdentity.Load(nodeDirectory, nodeSeed);
        var notBefore = new DateTimeOffset(2026, 6, 1, 0, 0, 0, TimeSpan.Zero);
        var notAfter = notBefore.AddDays(1);

        var membership = NodeMembership.Issue(authority, node.Id, Endpoint, notBefore, notAfter);

        Assert.Equal(MembershipError.None, NodeMembership.TryParse(membership.Encoded.Span, new HashSet<NodeId> { authority.Id }, notBefore.AddHours(1), Skew, out _));
        var encoded = membership.Encoded.Span;
        VectorFile.MatchOrWrite("v1-membership.json", new JsonObject
        {
            ["authoritySeed"] = VectorFile.Hex(authoritySeed),
            ["authorityKey"] = VectorFile.Hex(authority.Id.AsSpan()),
            ["nodeSeed"] = VectorFile.Hex(nodeSeed),
            ["nodeId"] = VectorFile.Hex(node.Id.AsSpan()),
            ["endpoint"] = Endpoint.OriginalString,
            ["notBefore"] = "2026-06-01T00:00:00Z",
            ["notAfter"] = "2026-06-02T00:00:00Z",
            ["signedMessage"] = VectorFile.Hex(NodeMembership.SignedMessage(encoded[..^NodeIdentity.SignatureSize])),
            ["membership"] = VectorFile.Hex(encoded),
        });
    }
}
