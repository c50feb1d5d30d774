using System.Net;
using Overlay.Host.Directory;
using Overlay.Host.Tests.Directory;
using Overlay.Identity;
using Overlay.Membership;

namespace Overlay.Host.Tests.Membership;

/// <summary>
/// The directory of a private network (docs/protocol.md 4.1) on a fake clock: a peer enters only
/// with a valid membership, and leaves routes, gossip and relaying the moment it expires.
/// </summary>
public sealed class MembershipDirectoryTests : IDisposable
{
    private static readonly TimeSpan Skew = TimeSpan.FromMinutes(5);
    private static readonly IPAddress Address = IPAddress.Parse("198.51.100.1");

    private readonly NodeIdentity _authority = NodeIdentity.Create();
    private readonly DirectoryParts _parts;

    public MembershipDirectoryTests() => _parts = new DirectoryParts(o => o.Network.Authorities.Add(_authority.Id.ToString()));

    public void Dispose()
    {
        _parts.Dispose();
        _authority.Dispose();
    }

    private NodeMembership Issue(NodeDescriptor descriptor, TimeSpan lifetime, NodeIdentity? authority = null)
    {
        var now = _parts.Time.GetUtcNow();
        return NodeMembership.Issue(authority ?? _authority, descriptor.Id, descriptor.Endpoint, now.AddMinutes(-1), now + lifetime);
    }

    [Fact]
    public void A_peer_without_a_membership_is_not_admitted()
    {
        var descriptor = _parts.Descriptor("http://198.51.100.1:7400");

        Assert.False(_parts.Directory.AddConfirmed(descriptor, Address));
        Assert.Equal(MembershipError.Missing, _parts.Memberships.Learn(default, descriptor.Id, descriptor.Endpoint, "a test"));
        Assert.Null(_parts.Directory.Find(descriptor.Id));
    }

    [Fact]
    public void A_forged_membership_admits_nobody()
    {
        using var forger = NodeIdentity.Create();
        var descriptor = _parts.Descriptor("http://198.51.100.1:7400");
        var forged = Issue(descriptor, TimeSpan.FromHours(1), forger);

        Assert.Equal(MembershipError.UnknownAuthority, _parts.Memberships.Learn(forged.Encoded.Span, descriptor.Id, descriptor.Endpoint, "a test"));
        Assert.False(_parts.Directory.AddConfirmed(descriptor, Address));
    }

    [Fact]
    public void A_membership_for_another_node_or_endpoint_does_not_admit_this_one()
    {
        var descriptor = _parts.Descriptor("http://198.51.100.1:7400");
        var other = _parts.Descriptor("http://198.51.100.2:7400");
        var othersMembership = Issue(other, TimeSpan.FromHours(1));

        Assert.Equal(MembershipError.WrongNode, _parts.Memberships.Learn(othersMembership.Encoded.Span, descriptor.Id, descriptor.Endpoint, "a test"));
        Assert.False(_parts.Directory.AddConfirmed(descriptor, Address));
    }

    [Fact]
    public async Task An_expired_membership_takes_the_peer_out_of_routes_gossip_and_relaying()
    {
        var descriptor = _parts.Descriptor("http://198.51.100.1:7400");
        var membership = Issue(descriptor, TimeSpan.FromMinutes(30));
        Assert.Equal(MembershipError.None, _parts.Memberships.Learn(membership.Encoded.Span, descriptor.Id, descriptor.Endpoint, "a test"));
        Assert.True(_parts.Directory.AddConfirmed(descriptor, Address));
        using var deadline = TestTimeouts.After(30);

        // Valid until NotAfter + skew (its onion key lasts longer): then the peer is out everywhere before any sweep runs.
        _parts.Time.Advance(TimeSpan.FromMinutes(29));
        Assert.True(_parts.Directory.TryGetLinkEndpoint(descriptor.Id, out _));
        Assert.Equal(descriptor.Id, Assert.Single(await _parts.Routes.SelectAsync(descriptor.Id, 0, [], deadline.Token)).Id);
        _parts.Time.Advance(TimeSpan.FromMinutes(1) + Skew + TimeSpan.FromSeconds(1));

        Assert.False(_parts.Directory.TryGetLinkEndpoint(descriptor.Id, out _));
        Assert.Null(_parts.Directory.FindMember(descriptor.Id));
        Assert.Empty(_parts.Directory.Sample(int.MaxValue, PeerStatus.Up));
        Assert.Equal(MembershipError.Expired, _parts.Memberships.Check(descriptor.Id, descriptor.Endpoint));
        Assert.Throws<Overlay.Errors.TunnelException>(() => _parts.Routes.Resolve([descriptor.Id]));

        _parts.Directory.Expire(Skew);
        Assert.Null(_parts.Directory.Find(descriptor.Id));
        Assert.Equal(0, _parts.Memberships.Count);
    }
}
