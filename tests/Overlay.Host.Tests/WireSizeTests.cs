using Overlay.Host.Tests.Infrastructure;
using Overlay.Host.Tunnels;
using Overlay.Identity;

namespace Overlay.Host.Tests;

/// <summary>
/// The sizes every hop sees on its link, recorded on real tunnels at each node's incoming Relay call
/// (<see cref="LinkMessageCounter"/>): what arrives from the predecessor and what goes back to it.
/// No hop may learn its position from the sizes, nor the destination the route's length: every hop
/// of a tunnel sees a header of the same size and the same cells in both directions, and the
/// destination sees the same whatever the route. Message boundaries are each hop's own (a relay
/// frames the cells it already holds in batches of its own, docs/protocol.md §3), so two messages
/// that arrive back to back may leave as one: the count of messages is timing, the cells are not.
/// Node 0 is the origin, nodes 1-8 the relays, node 9 the destination.
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
                Assert.True(Cells(hops[hop].RequestSizes, headerSize) == Cells(hops[0].RequestSizes, headerSize),
                    $"{relays} relays, forward: hop {hop + 1} ({hops[hop].Node}) received [{Describe(hops[hop].RequestSizes)}], hop 1 [{Describe(hops[0].RequestSizes)}]");
                Assert.True(Cells(hops[hop].ResponseSizes, 0) == Cells(hops[0].ResponseSizes, 0),
                    $"{relays} relays, backward: hop {hop + 1} ({hops[hop].Node}) sent back [{Describe(hops[hop].ResponseSizes)}], hop 1 [{Describe(hops[0].ResponseSizes)}]");
                AssertWholeBatches(hops[hop].RequestSizes, headerSize, $"{relays} relays, forward, hop {hop + 1}");
                AssertWholeBatches(hops[hop].ResponseSizes, 0, $"{relays} relays, backward, hop {hop + 1}");
            }

            destinationViews[relays] = hops[^1];
        }

        var shortest = destinationViews[RouteLengths[0]];
        foreach (var (relays, view) in destinationViews)
        {
            Assert.True(view.HeaderBytes == shortest.HeaderBytes && Cells(view.RequestSizes, headerSize) == Cells(shortest.RequestSizes, headerSize),
                $"forward: the destination received [{Describe(view.RequestSizes)}] through {relays} relays, [{Describe(shortest.RequestSizes)}] through {RouteLengths[0]}");
            Assert.True(Cells(view.ResponseSizes, 0) == Cells(shortest.ResponseSizes, 0),
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

    // The cells of a direction: each message is its header (first request message only) and whole cells,
    // plus a few bytes of protobuf framing, far less than a cell.
    private int Cells(IReadOnlyList<int> sizes, int headerBytes)
    {
        var cellSize = Cluster[0].Node.State.Network.CellSize;
        var cells = 0;
        for (var i = 0; i < sizes.Count; i++)
        {
            cells += (sizes[i] - (i == 0 ? headerBytes : 0)) / cellSize;
        }

        return cells;
    }

    // Every message carries at most one batch of cells and a size that is exactly cells plus framing.
    private void AssertWholeBatches(IReadOnlyList<int> sizes, int headerBytes, string where)
    {
        var cellSize = Cluster[0].Node.State.Network.CellSize;
        for (var i = 0; i < sizes.Count; i++)
        {
            var body = sizes[i] - (i == 0 ? headerBytes : 0);
            var cells = body / cellSize;
            Assert.True(cells <= 8 && body - (cells * cellSize) < 16, $"{where}: message {i + 1} of [{Describe(sizes)}] is not whole cells of one batch");
        }
    }
}
