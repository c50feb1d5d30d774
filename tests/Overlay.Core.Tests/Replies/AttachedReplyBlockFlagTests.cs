using Overlay.Cells;
using Overlay.Onion;
using Overlay.Protocol;
using Overlay.Tests.Support;

namespace Overlay.Tests.Replies;

/// <summary>
/// The deliver slot's "reply block attached" flag (docs/protocol.md §6.1, §7.8): only the destination reads
/// it, only a one-way message on a Baseline network carries it.
/// </summary>
public sealed class AttachedReplyBlockFlagTests
{
    [Fact]
    public void Only_the_destination_learns_that_a_one_way_message_carries_a_reply_block()
    {
        var parameters = NetworkParameters.Default;
        using var network = new TestNetwork(parameters, 3, seed: 30);
        var builder = new OnionHeaderBuilder(parameters, new SeededOnionRandom(31));
        var header = new byte[builder.HeaderSize];
        using var keys = builder.Build(network.Route(2), TunnelMode.OneWay, DeadlineClass.Seconds30, header, replyBlockAttached: true);

        for (var hop = 0; hop < 2; hop++)
        {
            var next = new byte[header.Length];
            using var relay = network.Nodes[hop].Processor.Process(header, next);
            Assert.Equal(HeaderOutcome.Relay, relay.Outcome);
            Assert.False(relay.ReplyBlockAttached);
            header = next;
        }

        using var destination = network.Nodes[2].Processor.Process(header, new byte[header.Length]);
        Assert.Equal((HeaderOutcome.Deliver, TunnelMode.OneWay, true), (destination.Outcome, destination.Mode, destination.ReplyBlockAttached));
    }

    [Fact]
    public void A_plain_message_has_no_flag_and_the_builder_refuses_it_off_one_way_or_baseline()
    {
        var parameters = NetworkParameters.Default;
        using var network = new TestNetwork(parameters, 2, seed: 32);
        var builder = new OnionHeaderBuilder(parameters, new SeededOnionRandom(33));
        var header = new byte[builder.HeaderSize];
        using (builder.Build(network.Route(0), TunnelMode.OneWay, DeadlineClass.Seconds30, header))
        {
            using var plain = network.Nodes[0].Processor.Process(header, new byte[header.Length]);
            Assert.False(plain.ReplyBlockAttached);
        }

        Assert.Throws<ArgumentException>(() => builder.Build(network.Route(1), TunnelMode.Duplex, DeadlineClass.Seconds30, header, replyBlockAttached: true));
        var macArray = parameters with { Construction = CellConstruction.MacArray };
        var macBuilder = new OnionHeaderBuilder(macArray, new SeededOnionRandom(34));
        Assert.Throws<ArgumentException>(() => macBuilder.Build(network.Route(1), TunnelMode.OneWay, DeadlineClass.Seconds30, new byte[macBuilder.HeaderSize], replyBlockAttached: true));
    }
}
