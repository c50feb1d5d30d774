using Overlay.Cells;
using Overlay.Errors;
using Overlay.Protocol;
using Overlay.Tests.Support;

namespace Overlay.Tests.Cells;

/// <summary>
/// The batch codec calls a node uses per link message (one cipher call per layer for all its cells)
/// produce exactly the bytes of the one-cell calls, at every hop and in both directions.
/// </summary>
public sealed class CellBatchTests
{
    public static TheoryData<CellConstruction, int, int> Cases()
    {
        var data = new TheoryData<CellConstruction, int, int>();
        foreach (var construction in new[] { CellConstruction.Baseline, CellConstruction.MacArray })
        {
            foreach (var cellSize in new[] { 1024, 4096 })
            {
                foreach (var relays in new[] { 0, 1, 3 })
                {
                    data.Add(construction, cellSize, relays);
                }
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Batches_match_cell_by_cell_at_every_hop_both_ways(CellConstruction construction, int cellSize, int relays)
    {
        var parameters = new NetworkParameters { Construction = construction, CellSize = cellSize };
        using var batched = InMemoryTunnel.Open(parameters, relays, seed: 77);
        using var single = InMemoryTunnel.Open(parameters, relays, seed: 77);
        var random = new Random(cellSize + relays);
        var forwardCapacity = batched.Origin.ForwardPayloadCapacity;
        var backwardCapacity = batched.Destination.BackwardPayloadCapacity;
        var plaintext = new byte[cellSize];
        var expected = new byte[cellSize];

        foreach (var count in new[] { 1, 8, 3, 5 })
        {
            // Forward: a message of `count` cells, the last one short and final on the last round.
            var final = count == 5;
            var data = new byte[(forwardCapacity * count) - (final ? 7 : 0)];
            random.NextBytes(data);
            var cells = new byte[count * cellSize];
            Assert.Equal(data.Length, batched.Origin.SealForwardCells(data, final, cells));
            var one = new byte[count * cellSize];
            for (var i = 0; i < count; i++)
            {
                var chunk = data.AsSpan(i * forwardCapacity, Math.Min(forwardCapacity, data.Length - (i * forwardCapacity)));
                single.Origin.SealForward(final && i == count - 1 ? CellType.End : CellType.Data, chunk, one.AsSpan(i * cellSize, cellSize));
            }

            Assert.Equal(one, cells);
            for (var hop = 0; hop < relays; hop++)
            {
                Assert.Equal(TunnelErrorKind.None, batched.RelayCodecs[hop].ProcessForwardCells(cells));
                for (var i = 0; i < count; i++)
                {
                    Assert.Equal(TunnelErrorKind.None, single.RelayCodecs[hop].ProcessForward(one.AsSpan(i * cellSize, cellSize)));
                }

                Assert.Equal(one, cells);
            }

            for (var i = 0; i < count; i++)
            {
                var opened = batched.Destination.OpenForward(cells.AsSpan(i * cellSize, cellSize), plaintext);
                Assert.False(opened.IsError, $"forward cell {i} of {count}: {opened.Error}");
                Assert.Equal(final && i == count - 1 ? CellType.End : CellType.Data, opened.Type);
                Assert.Equal(data.AsSpan(i * forwardCapacity, opened.PayloadLength), plaintext.AsSpan(OpenedCell.PayloadOffset, opened.PayloadLength));
                Assert.False(single.Destination.OpenForward(one.AsSpan(i * cellSize, cellSize), expected).IsError);
            }

            // Backward: the same shape, peeled at the origin in one call per relay.
            var reply = new byte[(backwardCapacity * count) - (final ? 3 : 0)];
            random.NextBytes(reply);
            var back = new byte[count * cellSize];
            Assert.Equal(reply.Length, batched.Destination.SealBackwardCells(reply, final, back));
            var backOne = new byte[count * cellSize];
            for (var i = 0; i < count; i++)
            {
                var chunk = reply.AsSpan(i * backwardCapacity, Math.Min(backwardCapacity, reply.Length - (i * backwardCapacity)));
                single.Destination.SealBackward(final && i == count - 1 ? CellType.End : CellType.Data, chunk, backOne.AsSpan(i * cellSize, cellSize));
            }

            Assert.Equal(backOne, back);
            for (var hop = relays - 1; hop >= 0; hop--)
            {
                batched.RelayCodecs[hop].ProcessBackwardCells(back);
                for (var i = 0; i < count; i++)
                {
                    single.RelayCodecs[hop].ProcessBackward(backOne.AsSpan(i * cellSize, cellSize));
                }

                Assert.Equal(backOne, back);
            }

            batched.Origin.PeelBackwardCells(back);
            for (var i = 0; i < count; i++)
            {
                var opened = batched.Origin.OpenPeeledBackward(back.AsSpan(i * cellSize, cellSize), plaintext);
                var reference = single.Origin.OpenBackward(backOne.AsSpan(i * cellSize, cellSize), expected);
                Assert.Equal(reference, opened);
                Assert.False(opened.IsError, $"backward cell {i} of {count}: {opened.Error}");
                Assert.Equal(reply.AsSpan(i * backwardCapacity, opened.PayloadLength), plaintext.AsSpan(OpenedCell.PayloadOffset, opened.PayloadLength));
            }
        }
    }

    [Theory]
    [InlineData(CellConstruction.Baseline)]
    [InlineData(CellConstruction.MacArray)]
    public void A_relay_error_cell_peeled_in_a_batch_still_names_its_hop(CellConstruction construction)
    {
        var parameters = new NetworkParameters { Construction = construction, CellSize = 1024 };
        using var tunnel = InMemoryTunnel.Open(parameters, 3, seed: 78);
        var cell = new byte[1024];
        tunnel.RelayCodecs[1].WriteErrorCell(TunnelErrorKind.NextHopUnreachable, cell, nextHop: true);
        tunnel.RelayCodecs[0].ProcessBackwardCells(cell);

        tunnel.Origin.PeelBackwardCells(cell);
        var opened = tunnel.Origin.OpenPeeledBackward(cell, new byte[1024]);

        Assert.True(opened.IsError);
        Assert.Equal(TunnelErrorKind.NextHopUnreachable, opened.Error);
        Assert.Equal(3, opened.Hop);
    }

    [Fact]
    public void A_modified_cell_inside_a_batch_is_caught_at_the_next_hop_with_the_mac_array()
    {
        var parameters = new NetworkParameters { Construction = CellConstruction.MacArray, CellSize = 1024 };
        using var tunnel = InMemoryTunnel.Open(parameters, 2, seed: 79);
        var cells = new byte[4 * 1024];
        tunnel.Origin.SealForwardCells(new byte[2000], final: false, cells);
        Bits.Flip(cells, (2 * 1024 * 8) + 4000);

        Assert.Equal(TunnelErrorKind.Tampered, tunnel.RelayCodecs[0].ProcessForwardCells(cells));
    }

    [Fact]
    public void Batches_must_be_whole_cells()
    {
        var parameters = new NetworkParameters { CellSize = 1024 };
        using var tunnel = InMemoryTunnel.Open(parameters, 1, seed: 80);

        Assert.Throws<ArgumentException>(() => tunnel.Origin.SealForwardCells([1], final: true, new byte[1500]));
        Assert.Throws<ArgumentException>(() => tunnel.Destination.SealBackwardCells([1], final: true, []));
        Assert.Equal(TunnelErrorKind.Malformed, tunnel.RelayCodecs[0].ProcessForwardCells(new byte[1023]));
        Assert.Throws<ArgumentException>(() => tunnel.RelayCodecs[0].ProcessBackwardCells(new byte[2047]));
        Assert.Throws<ArgumentException>(() => tunnel.Origin.PeelBackwardCells(new byte[1025]));
    }
}
