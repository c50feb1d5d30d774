using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Overlay.Host.Directory;
using Overlay.Host.Membership;
using Overlay.Membership;
using static Overlay.Host.Tests.Membership.JoinSetup;

namespace Overlay.Host.Tests.Membership;

/// <summary>
/// A private network of real nodes over many membership lifetimes: one clock for every node, which
/// runs in real time and jumps; node 0 is the authority (issuing through the Join call, memberships
/// of <see cref="Lifetime"/>); each jump waits until every member whose membership reached half-life
/// has renewed it and every other member holds the renewal.
/// </summary>
internal sealed class MembershipTimeline(DirectoryInfo root)
{
    /// <summary>The shortest lifetime an authority accepts: renewals every few minutes of the clock.</summary>
    public static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(10);

    public static readonly TimeSpan Skew = new Identity.OnionKeyOptions().ClockSkew;

    public JumpingTimeProvider Clock { get; } = new();

    /// <summary>Starts the authority (node 0), accepting <paramref name="token"/> for <paramref name="uses"/> joins.</summary>
    public Task<TestCluster> StartAuthorityAsync(string token, int uses, bool controlEndpoints = false)
    {
        var (directory, key) = AuthorityKey(root, "authority");
        return TestCluster.StartAsync(1, new ClusterOptions
        {
            ControlEndpoints = controlEndpoints,
            Configuration = new Dictionary<string, string?>
            {
                ["Overlay:Network:Authorities:0"] = key.ToString(),
                ["Overlay:Membership:Lifetime"] = Lifetime.ToString("c", CultureInfo.InvariantCulture),
            },
            ConfigureNode = (index, configuration) =>
            {
                if (index == 0)
                {
                    configuration["Overlay:Membership:AuthorityKeyDirectory"] = directory;
                    AddToken(configuration, 0, token, uses, Clock.GetUtcNow().AddHours(1));
                }
            },
            ConfigureServices = (_, services) => services.AddSingleton<TimeProvider>(Clock),
        });
    }

    /// <summary>The moment <paramref name="node"/>'s membership reaches half its validity, when it renews.</summary>
    public static DateTimeOffset HalfLife(ClusterNode node)
    {
        var own = Book(node).Own ?? throw new InvalidOperationException($"{node} holds no membership");
        return own.NotBefore + ((own.NotAfter - own.NotBefore) / 2);
    }

    /// <summary>
    /// Jumps the clock by <paramref name="by"/>, then waits until each of <paramref name="members"/>
    /// whose membership reached half-life has renewed it, and the others hold the renewal.
    /// </summary>
    public async Task JumpAsync(TestCluster cluster, TimeSpan by, IReadOnlyList<ClusterNode> members, CancellationToken cancellationToken)
    {
        var due = members.Where(m => HalfLife(m) <= Clock.GetUtcNow() + by).ToList();
        var since = cluster.Logs.Position;
        Clock.Jump(by);
        foreach (var node in due)
        {
            await cluster.Logs.WaitForAsync(e => e.Node == node.Name && e.EventId.Id == MembershipSetEvent && e.Sequence >= since,
                $"{node.Name}'s renewal", cancellationToken);
            await SpreadAsync(node, Book(node).Own!, members.Where(m => m != node).ToList(), cancellationToken);
        }
    }

    /// <summary>Gossip rounds from <paramref name="renewed"/> until every peer holds <paramref name="membership"/> (or a later one).</summary>
    public static async Task SpreadAsync(ClusterNode renewed, NodeMembership membership, IReadOnlyList<ClusterNode> peers, CancellationToken cancellationToken)
    {
        while (peers.Any(p => !(Book(p).Find(renewed.Id)?.NotAfter >= membership.NotAfter)))
        {
            cancellationToken.ThrowIfCancellationRequested();
            await renewed.Services.GetRequiredService<DirectoryService>().RunGossipRoundAsync(cancellationToken);
        }
    }

    public static MembershipBook Book(ClusterNode node) => node.Services.GetRequiredService<MembershipBook>();
}
