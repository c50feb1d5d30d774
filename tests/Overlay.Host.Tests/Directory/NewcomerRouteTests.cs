using System.Globalization;
using Overlay.Host.Tests.Infrastructure;
using Overlay.Identity;

namespace Overlay.Host.Tests.Directory;

/// <summary>
/// A peer this node has only just admitted is not yet known to the rest of the network (gossip takes
/// a few rounds), so a relay asked to reach it would fail with UnknownNextHop. Routes prefer peers
/// admitted at least the propagation time ago, and take a newcomer only when too few others fit.
/// </summary>
public sealed class NewcomerRouteTests
{
    [Fact]
    public async Task A_newcomer_is_not_chosen_while_settled_peers_fill_the_route()
    {
        using var parts = new DirectoryParts();
        for (var i = 0; i < 8; i++)
        {
            parts.Admit(string.Create(CultureInfo.InvariantCulture, $"198.{51 + i}.0.1"));
        }

        parts.Time.Advance(TimeSpan.FromHours(1));
        var newcomer = parts.Admit("203.0.113.9").Descriptor.Id;

        using var deadline = TestTimeouts.After(30);
        for (var attempt = 0; attempt < 200; attempt++)
        {
            var route = await parts.Routes.SelectAsync(null, 3, [], deadline.Token);
            Assert.DoesNotContain(newcomer, route.Select(d => d.Id));
        }

        // Once the whole network has had time to learn it, it is a peer like the others.
        parts.Time.Advance(parts.Routes.NewcomerSettleTime);
        Assert.True(await ChosenWithinAsync(parts, newcomer, deadline.Token), "the settled newcomer was never chosen in 200 routes");
    }

    [Fact]
    public async Task A_newcomer_is_taken_when_too_few_settled_peers_fit()
    {
        using var parts = new DirectoryParts();
        for (var i = 0; i < 3; i++)
        {
            parts.Admit(string.Create(CultureInfo.InvariantCulture, $"198.{51 + i}.0.1"));
        }

        parts.Time.Advance(TimeSpan.FromHours(1));
        var newcomer = parts.Admit("203.0.113.9").Descriptor.Id;

        using var deadline = TestTimeouts.After(30);
        var route = await parts.Routes.SelectAsync(null, 3, [], deadline.Token);
        Assert.Contains(newcomer, route.Select(d => d.Id));
    }

    [Fact]
    public void The_settle_time_is_the_gossip_rounds_a_descriptor_needs_to_reach_everyone()
    {
        using var parts = new DirectoryParts(o => o.Directory.GossipInterval = TimeSpan.FromSeconds(5));
        for (var i = 0; i < 15; i++)
        {
            parts.Admit(string.Create(CultureInfo.InvariantCulture, $"198.{51 + i}.0.1"));
        }

        // 16 nodes with this one: ceil(log4 16) + 2 = 4 rounds.
        Assert.Equal(TimeSpan.FromSeconds(20), parts.Routes.NewcomerSettleTime);
    }

    // Each 3-relay route over 9 peers misses a given one with probability 5/9: 200 misses in a row is about 1e-51.
    private static async Task<bool> ChosenWithinAsync(DirectoryParts parts, NodeId peer, CancellationToken cancellationToken)
    {
        for (var attempt = 0; attempt < 200; attempt++)
        {
            var route = await parts.Routes.SelectAsync(null, 3, [], cancellationToken);
            if (route.Any(d => d.Id == peer))
            {
                return true;
            }
        }

        return false;
    }
}
