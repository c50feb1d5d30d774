using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Overlay.Identity;
using Overlay.Membership;
using Overlay.Tests.Identity;
using Overlay.Tests.Vectors;

namespace Overlay.Tests.Membership;

public sealed class MembershipRevocationTests : IDisposable
{
    private static readonly DateTimeOffset Now = new(2026, 6, 1, 12, 0, 0, TimeSpan.Zero);
    private readonly NodeIdentity _authority = NodeIdentity.Create();
    private readonly NodeIdentity _node = NodeIdentity.Create();

    public void Dispose()
    {
        _authority.Dispose();
        _node.Dispose();
    }

    private HashSet<NodeId> Authorities => [_authority.Id];

    [Fact]
    public void A_revocation_round_trips_and_voids_only_memberships_issued_before_it()
    {
        var revocation = MembershipRevocation.Issue(_authority, _node.Id, Now, Now.AddDays(1));

        Assert.Equal(MembershipError.None, MembershipRevocation.TryParse(revocation.Encoded.Span, Authorities, Now, out var parsed));
        Assert.Equal(_node.Id, parsed!.Node);
        var before = NodeMembership.Issue(_authority, _node.Id, new Uri("https://node.example:7400"), Now.AddHours(-1), Now.AddHours(23));
        var after = NodeMembership.Issue(_authority, _node.Id, new Uri("https://node.example:7400"), Now.AddSeconds(1), Now.AddHours(23));
        Assert.True(parsed.Voids(before));
        Assert.False(parsed.Voids(after));
    }

    [Fact]
    public void Forged_changed_and_lapsed_revocations_are_refused()
    {
        using var forger = NodeIdentity.Create();
        var forged = MembershipRevocation.Issue(forger, _node.Id, Now, Now.AddDays(1)).Encoded.ToArray();
        Assert.Equal(MembershipError.UnknownAuthority, MembershipRevocation.TryParse(forged, Authorities, Now, out _));
        _authority.Id.CopyTo(forged.AsSpan(1));
        Assert.Equal(MembershipError.BadSignature, MembershipRevocation.TryParse(forged, Authorities, Now, out _));

        var encoded = MembershipRevocation.Issue(_authority, _node.Id, Now, Now.AddDays(1)).Encoded.ToArray();
        Assert.Equal(MembershipError.Expired, MembershipRevocation.TryParse(encoded, Authorities, Now.AddDays(1).AddSeconds(1), out _));
        Assert.Equal(MembershipError.Malformed, MembershipRevocation.TryParse(encoded.AsSpan(..^1), Authorities, Now, out _));
        var otherNode = (byte[])encoded.Clone();
        otherNode[40] ^= 1;
        Assert.Equal(MembershipError.BadSignature, MembershipRevocation.TryParse(otherNode, Authorities, Now, out _));
    }

    [Fact]
    public void Revocation_matches_the_published_vector()
    {
        using var authorityDirectory = new TempDirectory();
        using var nodeDirectory = new TempDirectory();
        using var authority = SeededIdentity.Load(authorityDirectory, SHA256.HashData("overlay/v1 membership vector authority"u8));
        using var node = SeededIdentity.Load(nodeDirectory, SHA256.HashData("overlay/v1 membership vector node"u8));
        var revokedAt = new DateTimeOffset(2026, 6, 1, 6, 0, 0, TimeSpan.Zero);

        var revocation = MembershipRevocation.Issue(authority, node.Id, revokedAt, revokedAt.AddDays(1));

        VectorFile.MatchOrWrite("v1-revocation.json", new JsonObject
        {
            ["authorityKey"] = VectorFile.Hex(authority.Id.AsSpan()),
            ["nodeId"] = VectorFile.Hex(node.Id.AsSpan()),
            ["revokedAt"] = "2026-06-01T06:00:00Z",
            ["until"] = "2026-06-02T06:00:00Z",
            ["signedMessage"] = VectorFile.Hex(MembershipRevocation.SignedMessage(revocation.Encoded.Span[..^NodeIdentity.SignatureSize])),
            ["revocation"] = VectorFile.Hex(revocation.Encoded.Span),
        });
    }
}
