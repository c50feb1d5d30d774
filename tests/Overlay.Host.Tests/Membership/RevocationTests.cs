using Microsoft.Extensions.DependencyInjection;
using Overlay.Host.Directory;
using Overlay.Host.Membership;
using Overlay.Identity;
using Overlay.Membership;

namespace Overlay.Host.Tests.Membership;

/// <summary>
/// Revocations (docs/protocol.md 4.1): signed by an authority, gossiped, and enforced by every node
/// that learns one. Gossip is driven round by round here (the timer stopped), so what is counted is
/// rounds, not time.
/// </summary>
public sealed class RevocationTests(ITestOutputHelper output) : IDisposable
{
    private readonly NodeIdentity _authority = NodeIdentity.Create();

    public void Dispose() => _authority.Dispose();

    [Fact]
    public async Task A_revoked_node_leaves_every_route_within_log4_N_plus_2_gossip_rounds()
    {
        const int Nodes = 20;
        var bound = (int)Math.Ceiling(Math.Log(Nodes, 4)) + 2;
        await using var cluster = await TestCluster.StartAsync(Nodes, new ClusterOptions { Authority = _authority, PauseGossipOnceFormed = true }, formSeconds: 90);
        using var deadline = TestTimeouts.After(60);
        var revoked = cluster[Nodes - 1];
        var others = cluster.Nodes.Take(Nodes - 1).ToList();
        var now = DateTimeOffset.UtcNow;
        var revocation = MembershipRevocation.Issue(_authority, revoked.Id, now, now.AddDays(1));

        // The authority's node learns it (as from the control API); gossip carries it from there.
        Assert.Equal(MembershipError.None, Book(cluster[0]).LearnRevocation(revocation.Encoded.Span, "the operator"));
        var rounds = 0;
        while (others.Any(n => n.Directory.FindMember(revoked.Id) is not null || n.Directory.Find(revoked.Id) is not null))
        {
            Assert.True(rounds < bound, $"after {rounds} rounds {others.Count(n => n.Directory.Find(revoked.Id) is not null)} nodes still hold the revoked node");
            rounds++;
            await Task.WhenAll(cluster.Nodes.Select(n => n.Services.GetRequiredService<DirectoryService>().RunGossipRoundAsync(deadline.Token)));
        }

        output.WriteLine($"the revoked node left all {others.Count} directories after {rounds} gossip rounds (bound {bound})");
        Assert.All(others, n => Assert.Equal(MembershipError.Revoked, Book(n).Check(revoked.Id, revoked.LinkEndpoint)));
        Assert.All(others, n => Assert.NotNull(Book(n).RevocationOf(revoked.Id)));
    }

    [Fact]
    public async Task A_revocation_is_kept_across_a_restart_and_a_forged_one_is_refused()
    {
        await using var cluster = await TestCluster.StartAsync(2, new ClusterOptions { Authority = _authority });
        using var forger = NodeIdentity.Create();
        var now = DateTimeOffset.UtcNow;
        var book = Book(cluster[0]);

        var forged = MembershipRevocation.Issue(forger, cluster[1].Id, now, now.AddDays(1));
        Assert.Equal(MembershipError.UnknownAuthority, book.LearnRevocation(forged.Encoded.Span, "a test"));
        Assert.NotNull(cluster[0].Directory.FindMember(cluster[1].Id));

        var revocation = MembershipRevocation.Issue(_authority, cluster[1].Id, now, now.AddDays(1));
        Assert.Equal(MembershipError.None, book.LearnRevocation(revocation.Encoded.Span, "a test"));
        Assert.Null(cluster[0].Directory.Find(cluster[1].Id));

        await cluster.StopAsync(0);
        using var deadline = TestTimeouts.After(30);
        var restarted = await cluster.RestartAsync(0, cancellationToken: deadline.Token);
        Assert.NotNull(Book(restarted).RevocationOf(cluster[1].Id));
    }

    private static MembershipBook Book(ClusterNode node) => node.Services.GetRequiredService<MembershipBook>();
}
