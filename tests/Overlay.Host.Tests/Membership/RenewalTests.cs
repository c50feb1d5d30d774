using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Overlay.Host.Membership;
using Overlay.Host.Tests.Directory;
using Overlay.Host.Tunnels;
using Overlay.Identity;
using Overlay.Membership;
using static Overlay.Host.Tests.Membership.JoinSetup;
using static Overlay.Host.Tests.Membership.MembershipTimeline;

namespace Overlay.Host.Tests.Membership;

/// <summary>
/// Memberships renewed over their lifetime, end to end: real nodes on one clock that runs in real
/// time and jumps to each renewal (a membership lasts at least 10 minutes), the authority a node
/// of the cluster that issues through the Join call.
/// </summary>
public sealed class RenewalTests : IDisposable
{
    private readonly DirectoryInfo _root;
    private readonly MembershipTimeline _timeline;

    public RenewalTests()
    {
        _root = System.IO.Directory.CreateTempSubdirectory("overlay-renewal-");
        _timeline = new MembershipTimeline(_root);
    }

    private JumpingTimeProvider Clock => _timeline.Clock;

    public void Dispose() => _root.Delete(recursive: true);

    [Fact]
    public async Task A_node_renews_at_half_life_spending_no_token_and_is_routed_through_after_its_first_membership_expired()
    {
        var token = NewToken();
        await using var cluster = await _timeline.StartAuthorityAsync(token, uses: 2);
        using var deadline = TestTimeouts.After(120);
        var authority = cluster[0];
        var relay = await cluster.AddNodeAsync(Joiner(_root, authority, token), deadline.Token);
        var origin = await cluster.AddNodeAsync(Joiner(_root, authority, token), deadline.Token);
        await cluster.WaitForMeshAsync(deadline.Token);
        var first = Book(relay).Own!;
        Assert.Equal(2, SpentUses(authority)); // the token is spent: a renewal that needed it would be refused as exhausted

        // Jump to just past each half-life of the relay's membership until the first one has expired for every clock within the skew.
        var renewals = 0;
        while (first.IsValidAt(Clock.GetUtcNow(), Skew))
        {
            var held = Book(relay).Own!;
            await _timeline.JumpAsync(cluster, HalfLife(relay) - Clock.GetUtcNow() + TimeSpan.FromSeconds(1), [authority, relay, origin], deadline.Token);
            var renewed = Book(relay).Own!;
            Assert.True(renewed.NotAfter > held.NotAfter, $"renewal {renewals + 1} did not extend the membership ({held.NotAfter:o} -> {renewed.NotAfter:o})");
            Assert.Equal(AuthorityKeyOf(authority), renewed.Authority);
            renewals++;
        }

        Assert.True(renewals >= 2, $"{renewals} renewals");
        Assert.Equal(2, SpentUses(authority));
        Assert.DoesNotContain(cluster.Logs.Entries, e => e.Node == relay.Name && e.EventId.Id == RenewalFailedEvent);

        // The origin's only possible relay to the authority is the renewed node: the tunnel crosses it.
        Assert.Equal(MembershipError.None, Book(origin).Check(relay.Id, relay.LinkEndpoint));
        var trip = await origin.Tunnels.RoundTripAsync(new TunnelRequest { Destination = authority.Id, Relays = 1 }, "renewed"u8.ToArray(), cancellationToken: deadline.Token);
        Assert.Equal("renewed"u8.ToArray(), trip.Reply.ToArray());
        Assert.Contains(relay.Id, trip.Route);
    }

    [Fact]
    public async Task A_renewal_that_cannot_reach_the_authority_is_counted_and_retried_after_the_retry_interval()
    {
        var retry = TimeSpan.FromMinutes(4);
        var token = NewToken();
        await using var cluster = await _timeline.StartAuthorityAsync(token, uses: 1);
        using var deadline = TestTimeouts.After(120);
        var node = await cluster.AddNodeAsync(Joiner(_root, cluster[0], token, retry), deadline.Token);
        await WaitUpAsync(cluster[0], node, deadline.Token);
        using var failures = new NodeCounter(node.Id, "overlay.membership.renewal.failures", MembershipRenewal.ReasonTag);
        var held = Book(node).Own!;

        await cluster.StopAsync(0);
        var since = cluster.Logs.Position;
        Clock.Jump(HalfLife(node) - Clock.GetUtcNow() + TimeSpan.FromSeconds(1));
        var failed = await cluster.Logs.WaitForAsync(e => e.Node == node.Name && e.EventId.Id == RenewalFailedEvent && e.Sequence >= since, "the failed renewal", deadline.Token);
        Assert.Contains("retrying in", failed.Message, StringComparison.Ordinal);
        Assert.Equal(1, failures.Count("unreachable"));
        Assert.Same(held, Book(node).Own); // still valid: the retry comes well before it expires

        await cluster.RestartAsync(0, cancellationToken: deadline.Token);
        // The retry waits the retry interval on the node's clock, which has not moved since the failure.
        Assert.Equal(1, failures.Count("unreachable"));
        since = cluster.Logs.Position;
        Clock.Jump(retry);
        await cluster.Logs.WaitForAsync(e => e.Node == node.Name && e.EventId.Id == MembershipSetEvent && e.Sequence >= since, "the renewal retried", deadline.Token);
        Assert.True(Book(node).Own!.NotAfter > held.NotAfter);
        Assert.Equal(1, failures.Count("unreachable"));
    }

    [Fact]
    public async Task A_join_call_ended_by_its_timeout_is_counted_as_unreachable()
    {
        await using var cluster = await _timeline.StartAuthorityAsync(NewToken(), uses: 1);
        using var deadline = TestTimeouts.After(60);
        // Accepts connections and never answers: the join call ends only by its own timeout.
        await using var silent = new ConnectionRecorder(holdOpen: true);
        var joiner = Joiner(_root, cluster[0], NewToken(), TimeSpan.FromMinutes(10));
        joiner["Overlay:Membership:JoinUrl"] = new UriBuilder(cluster[0].LinkEndpoint) { Host = "127.0.0.1", Port = silent.Port }.Uri.ToString();
        joiner["Overlay:Directory:CallTimeout"] = "00:00:01";
        var node = await cluster.AddNodeAsync(joiner, deadline.Token);

        // The call ended as Cancelled by the client's timeout, and that is reported as unreachable.
        await WaitForRefusalAsync(cluster, node, "Cancelled (unreachable)", deadline.Token);
        await silent.WaitForAsync(1, deadline.Token);
        Assert.DoesNotContain(cluster.Logs.Entries, e => e.Node == node.Name && e.EventId.Id == RenewalFailedEvent && e.Message.Contains("(cancelled)", StringComparison.Ordinal));
    }

    private static NodeId AuthorityKeyOf(ClusterNode authority) => authority.Services.GetRequiredService<MembershipAuthority>().Key!.Value;

    private static int SpentUses(ClusterNode authority) =>
        JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(Path.Combine(authority.DataDirectory, TokenLedger.FileName)))!.Values.Sum();

}
