using Grpc.Net.Client;
using Overlay.Host.Tests.Infrastructure;

namespace Overlay.Host.Tests;

/// <summary>
/// Message boundaries are not a channel between hops: a relay frames the cells it already holds by
/// its own rule (whole batches of MaxCellsPerMessage), never by how they arrived, without waiting
/// for more (docs/protocol.md §3).
/// </summary>
public sealed class FramingTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_predecessors_splitting_of_back_to_back_cells_does_not_reach_the_next_hop()
    {
        await using var cluster = await TestCluster.StartAsync(3, new ClusterOptions { NodeDefaultHandler = true });
        using var deadline = TestTimeouts.After(30);
        var relay = cluster[1];
        var destination = cluster[2];
        // The relay reads nothing after the header's message until every split message has arrived.
        cluster.Misbehaviours.Set(relay, RelayMisbehaviour.HoldAfterFirstMessage);
        cluster.LinkMessages.Enabled = true;
        var seen = cluster.LinkMessages.Calls.Count;
        using var keys = RawOrigin.Build(cluster[0].Descriptor.Network, [relay.Descriptor, destination.Descriptor]);
        using var channel = GrpcChannel.ForAddress(relay.LinkEndpoint, new GrpcChannelOptions
        {
            HttpHandler = TestLinkTls.Handler(relay.LinkEndpoint),
            DisposeHttpClient = true,
        });
        // 24 one-cell messages fit the relay's 128 KiB stream window: all of them reach its buffers.
        const int Cells = 24;
        var payload = keys.Codec.ForwardPayloadCapacity;

        using var call = await RawOrigin.SendOneCellPerMessageAsync(channel, keys, Cells, payload, deadline.Token);
        cluster.Misbehaviours.Release();
        var echoed = await RawOrigin.ReadReplyAsync(call, keys, deadline.Token);

        Assert.Equal((long)Cells * payload, echoed);
        var calls = await cluster.LinkMessages.WaitForCallsAsync(seen, 2, deadline.Token);
        var atRelay = calls.Single(c => c.Node == relay.Name).Messages;
        var atDestination = calls.Single(c => c.Node == destination.Name).Messages;
        output.WriteLine($"the relay received {atRelay} messages, the destination {atDestination}");
        Assert.Equal(Cells, atRelay);
        // 24 cells in batches of 8: 3 messages when the header's message waited for the buffered cells,
        // 4 when it left alone first, with room for a message that had not arrived when the relay looked.
        Assert.InRange(atDestination, 3, 6);
    }
}
