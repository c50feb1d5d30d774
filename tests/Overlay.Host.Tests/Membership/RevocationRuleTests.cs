using System.Net;
using Overlay.Host.Tests.Directory;
using Overlay.Identity;
using Overlay.Membership;

namespace Overlay.Host.Tests.Membership;

/// <summary>
/// The rule of a revocation (docs/protocol.md 4.1) at one node, on a fake clock: it voids the node's
/// memberships issued at or before it, not one issued after it, and a newer revocation of the same
/// node takes it out again as the first did.
/// </summary>
public sealed class RevocationRuleTests : IDisposable
{
    private static readonly TimeSpan Skew = TimeSpan.FromMinutes(5);
    private static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(30);
    private static readonly IPAddress Address = IPAddress.Parse("198.51.100.1");

    private readonly DirectoryInfo _data = System.IO.Directory.CreateTempSubdirectory("overlay-revocation-rule-");
    private readonly NodeIdentity _authority = NodeIdentity.Create();
    private readonly DirectoryParts _parts;
    private readonly List<NodeId> _revokedEvents = [];

    public RevocationRuleTests()
    {
        _parts = new DirectoryParts(o =>
        {
            o.Network.Authorities.Add(_authority.Id.ToString());
            o.DataDirectory = _data.FullName;
        });
        _parts.Memberships.Revoked += _revokedEvents.Add;
    }

    public void Dispose()
    {
        _parts.Dispose();
        _authority.Dispose();
        _data.Delete(recursive: true);
    }

    private DateTimeOffset Now => _parts.Time.GetUtcNow();

    // As an authority issues: backdated by the skew.
    private NodeMembership Issue(NodeDescriptor descriptor) =>
        NodeMembership.Issue(_authority, descriptor.Id, descriptor.Endpoint, Now - Skew, Now + Lifetime);

    private MembershipRevocation Revoke(NodeDescriptor descriptor) =>
        MembershipRevocation.Issue(_authority, descriptor.Id, Now, Now + Lifetime + Skew);

    [Fact]
    public void A_membership_issued_after_a_revocation_admits_the_node_and_a_newer_revocation_takes_it_out_again()
    {
        var descriptor = _parts.Descriptor("http://198.51.100.1:7400");
        var first = Issue(descriptor);
        Assert.Equal(MembershipError.None, _parts.Memberships.Learn(first.Encoded.Span, descriptor.Id, descriptor.Endpoint, "a test"));
        Assert.True(_parts.Directory.AddConfirmed(descriptor, Address));

        var revocation = Revoke(descriptor);
        Assert.Equal(MembershipError.None, _parts.Memberships.LearnRevocation(revocation.Encoded.Span, "a test"));
        Assert.Null(_parts.Directory.Find(descriptor.Id));
        Assert.Equal([descriptor.Id], _revokedEvents);

        // Past the revocation's keeping time (no sweep has run: the record is still held), an authority admits it again.
        _parts.Time.Advance(Lifetime + Skew + TimeSpan.FromMinutes(1));
        Assert.Null(_parts.Memberships.RevocationOf(descriptor.Id));
        var readmitted = Issue(descriptor);
        Assert.True(readmitted.NotBefore > revocation.RevokedAt);
        Assert.Equal(MembershipError.None, _parts.Memberships.Learn(readmitted.Encoded.Span, descriptor.Id, descriptor.Endpoint, "a test"));
        Assert.True(_parts.Directory.AddConfirmed(descriptor, Address));
        Assert.Equal(MembershipError.None, _parts.Memberships.Check(descriptor.Id, descriptor.Endpoint));

        // Revoked again: out of the directory again, its links closed, the newer revocation kept.
        _parts.Time.Advance(TimeSpan.FromMinutes(1));
        var again = Revoke(descriptor);
        Assert.Equal(MembershipError.None, _parts.Memberships.LearnRevocation(again.Encoded.Span, "a test"));
        Assert.Equal([descriptor.Id, descriptor.Id], _revokedEvents);
        Assert.Null(_parts.Directory.Find(descriptor.Id));
        Assert.Equal(MembershipError.Revoked, _parts.Memberships.Check(descriptor.Id, descriptor.Endpoint));
        Assert.Equal(again.RevokedAt, _parts.Memberships.RevocationOf(descriptor.Id)!.RevokedAt);
    }

    [Fact]
    public void An_older_revocation_gossiped_after_a_newer_one_changes_nothing()
    {
        var descriptor = _parts.Descriptor("http://198.51.100.1:7400");
        var older = Revoke(descriptor);
        _parts.Time.Advance(TimeSpan.FromMinutes(1));
        var newer = Revoke(descriptor);

        Assert.Equal(MembershipError.None, _parts.Memberships.LearnRevocation(newer.Encoded.Span, "a test"));
        Assert.Equal(MembershipError.None, _parts.Memberships.LearnRevocation(older.Encoded.Span, "a test"));

        Assert.Equal([descriptor.Id], _revokedEvents);
        Assert.Equal(newer.RevokedAt, _parts.Memberships.RevocationOf(descriptor.Id)!.RevokedAt);
    }
}
