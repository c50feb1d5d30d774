using Overlay.Errors;
using Overlay.Protocol;
using Overlay.Tests.Support;

namespace Overlay.Tests.Cells;

/// <summary>Guarantee 3's last sentence (docs/protocol.md): only the authenticated End cell ends a message; a cut stream is an error.</summary>
public sealed class TruncationTests
{
    private const int Relays = 3;

    public static TheoryData<Direction, int> Links()
    {
        var data = new TheoryData<Direction, int>();
        for (var receiver = 1; receiver <= Relays + 1; receiver++)
        {
            data.Add(Direction.Forward, receiver);
        }

        for (var receiver = 0; receiver <= Relays; receiver++)
        {
            data.Add(Direction.Backward, receiver);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Links))]
    public void A_stream_cut_between_cells_before_the_end_is_truncated_at_the_receiving_end(Direction direction, int receiver)
    {
        foreach (var wholeCells in new[] { 0, 1, 4 })
        {
            // A fresh tunnel each time: a cut one is out of step, as a real one would be torn down.
            using var tunnel = InMemoryTunnel.Open(NetworkParameters.Default, Relays, seed: 700 + (10 * receiver) + wholeCells);
            var message = new byte[5 * tunnel.Parameters.CellSize];
            new Random(receiver).NextBytes(message);
            var filter = LinkFilter.CutAfter(direction, receiver, wholeCells * tunnel.Parameters.CellSize);

            var result = Send(tunnel, direction, message, filter);

            Assert.True(filter.Applied);
            TunnelAssert.FailedAt(result, TunnelErrorKind.Truncated, direction == Direction.Forward ? tunnel.DestinationHop : 0);
        }
    }

    [Theory]
    [MemberData(nameof(Links))]
    public void A_stream_cut_inside_a_cell_is_truncated_at_the_hop_holding_the_partial_cell(Direction direction, int receiver)
    {
        var random = new Random(710 + receiver);
        using var tunnel = InMemoryTunnel.Open(NetworkParameters.Default, Relays, seed: 710 + receiver);
        var cellSize = tunnel.Parameters.CellSize;
        var message = new byte[3 * cellSize];
        random.NextBytes(message);
        var filter = LinkFilter.CutAfter(direction, receiver, (2 * cellSize) + random.Next(1, cellSize));

        var result = Send(tunnel, direction, message, filter);

        Assert.True(filter.Applied);
        TunnelAssert.FailedAt(result, TunnelErrorKind.Truncated, receiver);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(4)]
    public void Any_number_of_whole_cells_without_the_end_is_truncated(int wholeCells)
    {
        using var tunnel = InMemoryTunnel.Open(NetworkParameters.Default, Relays, seed: 720 + wholeCells);
        var cellSize = tunnel.Parameters.CellSize;
        var message = new byte[5 * cellSize];
        var forward = LinkFilter.CutAfter(Direction.Forward, 2, wholeCells * cellSize);
        var backward = LinkFilter.CutAfter(Direction.Backward, 2, wholeCells * cellSize);

        TunnelAssert.FailedAt(tunnel.SendForward(message, forward), TunnelErrorKind.Truncated, tunnel.DestinationHop);
        TunnelAssert.FailedAt(tunnel.SendBackward(message, backward), TunnelErrorKind.Truncated, 0);
    }

    [Fact]
    public void A_cut_after_the_last_byte_changes_nothing()
    {
        using var tunnel = InMemoryTunnel.Open(NetworkParameters.Default, Relays, seed: 730);
        var message = new byte[10_000];
        new Random(731).NextBytes(message);
        var cells = InMemoryTunnel.Split(message.Length, tunnel.Origin.ForwardPayloadCapacity).Count();
        var filter = LinkFilter.CutAfter(Direction.Forward, Relays + 1, cells * tunnel.Parameters.CellSize);

        TunnelAssert.Delivered(message, tunnel.SendForward(message, filter));
        Assert.False(filter.Applied);
    }

    [Theory]
    [InlineData(CellConstruction.Baseline)]
    [InlineData(CellConstruction.MacArray)]
    public void An_empty_message_is_an_end_cell_and_arrives_as_empty_not_as_nothing(CellConstruction construction)
    {
        using var tunnel = InMemoryTunnel.Open(new NetworkParameters { Construction = construction }, Relays, seed: 740);

        var forward = tunnel.SendForward([]);
        var backward = tunnel.SendBackward([]);

        TunnelAssert.Delivered([], forward);
        TunnelAssert.Delivered([], backward);
        Assert.Equal(1, forward.Links[1].Cells);
    }

    private static StreamResult Send(InMemoryTunnel tunnel, Direction direction, byte[] message, LinkFilter filter) =>
        direction == Direction.Forward ? tunnel.SendForward(message, filter) : tunnel.SendBackward(message, filter);
}
