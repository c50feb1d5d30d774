using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Overlay.Host.Membership;
using Overlay.Host.Tests.Infrastructure;
using Overlay.Membership;
using V1 = Overlay.Protocol.Control.V1;
using static Overlay.Host.Tests.Membership.JoinSetup;
using static Overlay.Host.Tests.Membership.MembershipTimeline;

namespace Overlay.Host.Tests.Membership;

/// <summary>
/// Admitting a revoked node id again (docs/protocol.md 4.1): refused, with the reason and until
/// when, while any authority's revocation of it is kept; a revocation also cancels every
/// authority's standing admission of the id. Admission after the revocation lapses (7 days on):
/// RevocationKeepingTests.
/// </summary>
public sealed class ReadmissionTests : IDisposable
{
    private static readonly TimeSpan Retry = TimeSpan.FromMinutes(1);

    private readonly DirectoryInfo _root = System.IO.Directory.CreateTempSubdirectory("overlay-readmission-");

    public void Dispose() => _root.Delete(recursive: true);

    [Fact]
    public async Task A_revoked_id_is_refused_admission_and_renewal_while_its_revocation_is_kept()
    {
        var timeline = new MembershipTimeline(_root);
        var token = NewToken();
        await using var cluster = await timeline.StartAuthorityAsync(token, uses: 1, controlEndpoints: true);
        using var deadline = TestTimeouts.After(120);
        var authority = cluster[0];
        using var control = new ControlCall(authority.Node);
        var witness = await cluster.AddNodeAsync(Joiner(_root, authority, token), deadline.Token);
        var revokee = await cluster.AddNodeAsync(Joiner(_root, authority, token: "", Retry), deadline.Token);
        await WaitForRefusalAsync(cluster, revokee, "no_token", deadline.Token);
        await AdmitAndRejoinAsync(cluster, timeline, control, revokee, deadline.Token);
        await WaitUpAsync(witness, revokee, deadline.Token);

        var revoked = (await control.RevokeMemberAsync(new V1.RevokeMemberRequest { NodeId = revokee.Id.ToString() }, cancellationToken: deadline.Token)).Revocation;
        await TestCluster.WaitForDirectoryAsync(witness, d => d.Find(revokee.Id) is null, "the revoked node gone from the witness", deadline.Token);

        // Refused while the revocation is kept: the typed reason, and until when.
        var refused = await Assert.ThrowsAsync<RpcException>(async () =>
            await control.AdmitMemberAsync(new V1.AdmitMemberRequest { NodeId = revokee.Id.ToString() }, cancellationToken: deadline.Token));
        Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
        Assert.Equal("revoked", refused.Trailers.GetValue(JoinRefusals.ReasonTrailer));
        var until = DateTimeOffset.FromUnixTimeSeconds(revoked.Until.Seconds);
        Assert.Contains(until.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss", System.Globalization.CultureInfo.InvariantCulture), refused.Status.Detail, StringComparison.Ordinal);

        // Kept for the longest membership any authority could have issued, whatever this authority's Lifetime
        // (after it, RevocationKeepingTests: an operator admits the id anew).
        Assert.Equal(revoked.RevokedAt.Seconds + (long)(NodeMembership.MaxValidity + Skew).TotalSeconds, revoked.Until.Seconds);

        // The clock moves on; the authority and the witness renew on the way, the revokee is refused.
        while (!cluster.Logs.Entries.Any(e => e.Node == revokee.Name && e.EventId.Id == RenewalFailedEvent && e.Message.Contains("revoked", StringComparison.Ordinal)))
        {
            await timeline.JumpAsync(cluster, TimeSpan.FromMinutes(2), [authority, witness], deadline.Token);
        }
    }

    [Fact]
    public async Task A_revocation_by_one_authority_cancels_another_authority_s_standing_admission()
    {
        var (directoryA, keyA) = AuthorityKey(_root, "authority-a");
        var (directoryB, keyB) = AuthorityKey(_root, "authority-b");
        await using var cluster = await TestCluster.StartAsync(2, new ClusterOptions
        {
            ControlEndpoints = true,
            Configuration = new Dictionary<string, string?>
            {
                ["Overlay:Network:Authorities:0"] = keyA.ToString(),
                ["Overlay:Network:Authorities:1"] = keyB.ToString(),
            },
            ConfigureNode = (index, configuration) =>
            {
                if (index < 2)
                {
                    configuration["Overlay:Membership:AuthorityKeyDirectory"] = index == 0 ? directoryA : directoryB;
                }
            },
        });
        using var deadline = TestTimeouts.After(60);
        var (a, b) = (cluster[0], cluster[1]);
        var node = await cluster.AddNodeAsync(Joiner(_root, b, token: ""), deadline.Token);
        using (var controlB = new ControlCall(b.Node))
        {
            await controlB.AdmitMemberAsync(new V1.AdmitMemberRequest { NodeId = node.Id.ToString() }, cancellationToken: deadline.Token);
        }

        await WaitUpAsync(a, node, deadline.Token);
        Assert.Contains(node.Id, Authority(b).Admitted);

        using (var controlA = new ControlCall(a.Node))
        {
            await controlA.RevokeMemberAsync(new V1.RevokeMemberRequest { NodeId = node.Id.ToString() }, cancellationToken: deadline.Token);
        }

        // B learns the revocation by gossip and drops its admission (persisted): once the revocation lapses, B does not let the node back in by itself.
        const int AdmissionCancelledEvent = 359;
        await cluster.Logs.WaitForAsync(e => e.Node == b.Name && e.EventId.Id == AdmissionCancelledEvent, "B cancelling its admission", deadline.Token);
        Assert.DoesNotContain(node.Id, Authority(b).Admitted);
        Assert.DoesNotContain(node.Id.ToString(), File.ReadAllLines(Path.Combine(b.DataDirectory, MembershipAuthority.AdmittedFileName)));
    }

    // The operator admits the node; the clock moves on to its next join attempt until one succeeds (an attempt
    // still under way when the clock moved ends in a refusal and is retried after the next move).
    private static async Task AdmitAndRejoinAsync(TestCluster cluster, MembershipTimeline timeline, ControlCall control, ClusterNode node, CancellationToken cancellationToken)
    {
        await control.AdmitMemberAsync(new V1.AdmitMemberRequest { NodeId = node.Id.ToString() }, cancellationToken: cancellationToken);
        while (true)
        {
            var since = cluster.Logs.Position;
            timeline.Clock.Jump(Retry);
            var attempt = await cluster.Logs.WaitForAsync(e => e.Node == node.Name && e.EventId.Id is MembershipSetEvent or RenewalFailedEvent && e.Sequence >= since,
                $"{node.Name}'s next join attempt", cancellationToken);
            if (attempt.EventId.Id == MembershipSetEvent)
            {
                return;
            }
        }
    }

    private static MembershipAuthority Authority(ClusterNode node) => node.Services.GetRequiredService<MembershipAuthority>();
}
