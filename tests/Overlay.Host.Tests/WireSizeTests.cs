using Overlay.Host.Tests.Infrastructure;
using Overlay.Host.Tunnels;
using Overlay.Identity;

namespace Overlay.Host.Tests;

/// <summary>
/// The sizes every hop sees on its link, recorded on real tunnels at each node's incoming Relay call
/// (<see cref="LinkMessageCounter"/>): what arrives from the predecessor and what goes back to it.
/// No hop may learn its position from the sizes, nor the destination the route's length: every hop
/// of a tunnel sees the same messages with the same sizes in both directions, and the destination
/// sees the same whatever the route. Node 0 is the origin, nodes 1-8 the relays, node 9 the destination.
/// </summary>
public sealed class WireSizeTests(TenNodeFixture fixture, ITestOutputHelper output) : IClassFixture<TenNodeFixture>
{
    private static readonly int[] RouteLengths = [1, 3, 8];

    /// <summary>Request sizes: one cell, a full message that rides with the header, several messages.</summary>
    public enum Traffic
    {
        OneCell,
        OneMessage,
        SeveralMessages,
    }

    private TestCluster Cluster => fixture.Cluster;

    private ClusterNode Destination => Cluster[9];

    [Theory]
    [InlineData(Traffic.OneCell)]
    [InlineData(Traffic.OneMessage)]
    [InlineData(Traffic.SeveralMessages)]
    public async Task Every_hop_sees_the_same_messages_and_the_destination_cannot_tell_the_route_length(Traffic traffic)
    {
        var request = new byte[traffic switch
        {
            Traffic.OneCell => 10,
            Traffic.OneMessage => Cluster[0].Tunnels.MaxInitialDataBytes,
            _ => (3 * Cluster[0].Tunnels.MaxInitialDataBytes) + 1000,
        }];
        Random.Shared.NextBytes(request);
        var headerSize = Cluster[0].Node.State.Processor.HeaderSize;

        var destinationViews = new Dictionary<int, LinkCall>();
        foreach (var relays in RouteLengths)
        {
            var hops = await RoundTripRecordedAsync(relays, request);
            output.WriteLine($"{relays} relays, {request.Length} request bytes: every hop received [{Describe(hops[0].RequestSizes)}] and sent back [{Describe(hops[0].ResponseSizes)}]");

            for (var hop = 0; hop < hops.Count; hop++)
            {
                Assert.True(hops[hop].HeaderBytes == headerSize, $"{relays} relays: hop {hop + 1} ({hops[hop].Node}) received a {hops[hop].HeaderBytes}-byte header, not {headerSize}");
                Assert.True(hops[hop].RequestSizes.SequenceEqual(hops[0].RequestSizes),
                    $"{relays} relays, forward: hop {hop + 1} ({hops[hop].Node}) received [{Describe(hops[hop].RequestSizes)}], hop 1 [{Describe(hops[0].RequestSizes)}]");
                Assert.True(hops[hop].ResponseSizes.SequenceEqual(hops[0].ResponseSizes),
                    $"{relays} relays, backward: hop {hop + 1} ({hops[hop].Node}) sent back [{Describe(hops[hop].ResponseSizes)}], hop 1 [{Describe(hops[0].ResponseSizes)}]");
            }

            destinationViews[relays] = hops[^1];
        }

        var shortest = destinationViews[RouteLengths[0]];
        foreach (var (relays, view) in destinationViews)
        {
            Assert.True(view.RequestSizes.SequenceEqual(shortest.RequestSizes),
                $"forward: the destination received [{Describe(view.RequestSizes)}] through {relays} relays, [{Describe(shortest.RequestSizes)}] through {RouteLengths[0]}");
            Assert.True(view.ResponseSizes.SequenceEqual(shortest.ResponseSizes),
                $"backward: the destination sent [{Describe(view.ResponseSizes)}] through {relays} relays, [{Describe(shortest.ResponseSizes)}] through {RouteLengths[0]}");
        }
    }

    // One echo round trip from node 0 over nodes 1..relays to node 9; the hops' calls in route order.
    private async Task<IReadOnlyList<LinkCall>> RoundTripRecordedAsync(int relays, byte[] request)
    {
        using var deadline = TestTimeouts.After(30);
        NodeId[] route = [.. Enumerable.Range(1, relays).Select(i => Cluster[i].Id), Destination.Id];
        var seen = Cluster.LinkMessages.Calls.Count;
        Cluster.LinkMessages.Enabled = true;
        try
        {
            var trip = await Cluster[0].Tunnels.RoundTripAsync(new TunnelRequest { Route = route }, request, cancellationToken: deadline.Token);
            Assert.Equal(request, trip.Reply);
        }
        finally
        {
            Cluster.LinkMessages.Enabled = false;
        }

        var calls = await Cluster.LinkMessages.WaitForCallsAsync(seen, relays + 1, deadline.Token);
        string[] order = [.. Enumerable.Range(1, relays).Select(i => Cluster[i].Name), Destination.Name];
        Assert.Equal(order.Order(), calls.Select(c => c.Node).Order());
        return [.. order.Select(name => calls.Single(c => c.Node == name))];
    }

    private static string Describe(IReadOnlyList<int> sizes) => string.Join(", ", sizes);
}
