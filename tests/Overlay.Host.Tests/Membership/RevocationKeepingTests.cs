using Microsoft.Extensions.Logging.Abstractions;
using Overlay.Host.Membership;
using Overlay.Host.Options;
using Overlay.Host.Tests.Directory;
using Overlay.Identity;
using Overlay.Membership;

namespace Overlay.Host.Tests.Membership;

/// <summary>
/// How long a revocation is kept (docs/protocol.md 4.1): until every membership any authority could
/// have issued before it has expired, whatever the revoking authority's own lifetime; and a newer
/// revocation of the same node never shortens that.
/// </summary>
public sealed class RevocationKeepingTests : IDisposable
{
    private static readonly TimeSpan ShortLifetime = TimeSpan.FromMinutes(30);

    private readonly DirectoryInfo _data = System.IO.Directory.CreateTempSubdirectory("overlay-revocation-keeping-");
    private readonly NodeIdentity _other = NodeIdentity.Create();
    private readonly OverlayOptions _options = new();
    private readonly DirectoryParts _parts;
    private readonly MembershipAuthority _authority;

    public RevocationKeepingTests()
    {
        var keyDirectory = Path.Combine(_data.FullName, "authority");
        using (var key = NodeIdentity.LoadOrCreate(keyDirectory))
        {
            Configure(_options, key.Id, keyDirectory);
            _parts = new DirectoryParts(o => Configure(o, key.Id, keyDirectory));
        }

        _authority = new MembershipAuthority(Microsoft.Extensions.Options.Options.Create(_options), _parts.State, _parts.Memberships, _parts.Time, NullLogger<MembershipAuthority>.Instance);
    }

    public void Dispose()
    {
        _authority.Dispose();
        _parts.Dispose();
        _other.Dispose();
        _data.Delete(recursive: true);
    }

    private DateTimeOffset Now => _parts.Time.GetUtcNow();

    private void Configure(OverlayOptions options, NodeId key, string keyDirectory)
    {
        options.Network.Authorities.Add(key.ToString());
        options.Network.Authorities.Add(_other.Id.ToString());
        options.DataDirectory = _data.FullName;
        options.Membership.AuthorityKeyDirectory = keyDirectory;
        options.Membership.Lifetime = ShortLifetime;
    }

    [Fact]
    public void A_revocation_is_kept_for_the_longest_membership_any_authority_could_have_issued()
    {
        var descriptor = _parts.Descriptor("http://198.51.100.1:7400");
        var revocation = _authority.Revoke(descriptor.Id);

        Assert.Equal((Now + NodeMembership.MaxValidity + _options.OnionKeys.ClockSkew).ToUnixTimeSeconds(), revocation.Until.ToUnixTimeSeconds());
    }

    [Fact]
    public void Another_authority_s_longer_membership_issued_before_the_revocation_stays_void_after_the_revoking_authority_s_lifetime()
    {
        var descriptor = _parts.Descriptor("http://198.51.100.1:7400");
        var longer = NodeMembership.Issue(_other, descriptor.Id, descriptor.Endpoint, Now, Now + NodeMembership.MaxValidity);
        Assert.Equal(MembershipError.None, _parts.Memberships.Learn(longer.Encoded.Span, descriptor.Id, descriptor.Endpoint, "a test"));
        _authority.Revoke(descriptor.Id);

        _parts.Time.Advance(ShortLifetime + _options.OnionKeys.ClockSkew + TimeSpan.FromMinutes(1));
        _parts.Memberships.Sweep();

        Assert.Equal(MembershipError.Revoked, _parts.Memberships.Learn(longer.Encoded.Span, descriptor.Id, descriptor.Endpoint, "a test"));
    }

    [Fact]
    public void A_newer_revocation_kept_for_less_time_does_not_shorten_the_held_one()
    {
        var descriptor = _parts.Descriptor("http://198.51.100.1:7400");
        var held = MembershipRevocation.Issue(_other, descriptor.Id, Now, Now + NodeMembership.MaxValidity);
        Assert.Equal(MembershipError.None, _parts.Memberships.LearnRevocation(held.Encoded.Span, "a test"));
        _parts.Time.Advance(TimeSpan.FromMinutes(1));
        var shorter = MembershipRevocation.Issue(_other, descriptor.Id, Now, Now + ShortLifetime);
        Assert.Equal(MembershipError.None, _parts.Memberships.LearnRevocation(shorter.Encoded.Span, "a test"));

        _parts.Time.Advance(ShortLifetime + TimeSpan.FromMinutes(1));

        Assert.Equal(held.Until, _parts.Memberships.RevocationOf(descriptor.Id)?.Until);
    }

    [Fact]
    public void Once_the_revocation_lapses_an_operator_admits_the_id_anew_and_its_membership_is_accepted()
    {
        var descriptor = _parts.Descriptor("http://198.51.100.1:7400");
        var revocation = _authority.Revoke(descriptor.Id);
        Assert.Equal(JoinRefusal.Revoked, _authority.Admit(descriptor.Id));

        _parts.Time.Advance(revocation.Until - Now + TimeSpan.FromSeconds(1));
        Assert.Null(_authority.Admit(descriptor.Id));
        var readmitted = _authority.Issue(descriptor.Id, descriptor.Endpoint);

        Assert.True(readmitted.NotBefore > revocation.RevokedAt);
        Assert.Equal(MembershipError.None, _parts.Memberships.Learn(readmitted.Encoded.Span, descriptor.Id, descriptor.Endpoint, "a test"));
    }

    [Fact]
    public void An_admission_file_that_cannot_be_written_neither_skips_other_subscribers_nor_fails_the_revocation()
    {
        var descriptor = _parts.Descriptor("http://198.51.100.1:7400");
        Assert.Null(_authority.Admit(descriptor.Id));
        var admittedPath = Path.Combine(_data.FullName, MembershipAuthority.AdmittedFileName);
        File.Delete(admittedPath);
        System.IO.Directory.CreateDirectory(admittedPath); // the save's final move now fails
        var revokedEvents = new List<NodeId>();
        _parts.Memberships.Revoked += revokedEvents.Add;

        var revocation = MembershipRevocation.Issue(_other, descriptor.Id, Now, Now + NodeMembership.MaxValidity);
        Assert.Equal(MembershipError.None, _parts.Memberships.LearnRevocation(revocation.Encoded.Span, "a test"));

        Assert.Equal([descriptor.Id], revokedEvents);
        Assert.DoesNotContain(descriptor.Id, _authority.Admitted);
    }
}
