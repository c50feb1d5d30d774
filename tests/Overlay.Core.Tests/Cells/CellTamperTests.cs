using Overlay.Errors;
using Overlay.Protocol;
using Overlay.Tests.Support;

namespace Overlay.Tests.Cells;

/// <summary>
/// Guarantee 3 (docs/protocol.md) for cells. Forward: the baseline lets a modified cell travel to the destination,
/// which refuses it; the MAC array has the very next hop refuse it. Backward: the origin refuses
/// it. Every sample runs on a fresh tunnel, so a relay that passed a bad cell cannot skew the next.
/// </summary>
public sealed class CellTamperTests
{
    private const int Relays = 8;

    [Theory]
    [InlineData(CellConstruction.Baseline, 90)]
    [InlineData(CellConstruction.MacArray, 90)]
    public void A_flipped_bit_in_a_forward_cell_is_caught_at_the_destination_or_with_the_MAC_array_at_the_next_hop(CellConstruction construction, int samples)
    {
        var parameters = new NetworkParameters { Construction = construction, CellSize = 1024 };
        var random = new Random(600 + (int)construction);
        var problems = new List<string>();
        for (var i = 0; i < samples; i++)
        {
            var receiver = random.Next(1, Relays + 2);
            var index = random.Next(3);
            var bit = ForwardBit(random, parameters);
            using var tunnel = InMemoryTunnel.Open(parameters, Relays, seed: 610 + i + (1000 * (int)construction));
            var message = ThreeCellMessage(random, tunnel.Origin.ForwardPayloadCapacity);
            var filter = LinkFilter.FlipBit(Direction.Forward, receiver, index, bit);

            var result = tunnel.SendForward(message, filter);

            var expectedHop = construction == CellConstruction.MacArray ? receiver : tunnel.DestinationHop;
            var expected = new StreamFailure(TunnelErrorKind.Tampered, expectedHop, 0);
            if (!filter.Applied || result.Message is not null || result.Failures.Count != 1 || result.Failure != expected)
            {
                problems.Add($"cell {index} bit {bit} into hop {receiver}: {string.Join(", ", result.Failures)}");
                continue;
            }

            // Nothing was passed on past the hop that caught it (MAC array), or everything was (baseline).
            if (expectedHop <= Relays)
            {
                Assert.Equal(index, result.Links[expectedHop + 1].Cells);

                // That relay's error cell names it at the origin.
                TunnelAssert.FailedAt(tunnel.SendError(expectedHop, TunnelErrorKind.Tampered), TunnelErrorKind.Tampered, 0, expectedHop);
            }
            else
            {
                Assert.All(result.Links.Values, l => Assert.Equal(3, l.Cells));
            }
        }

        Assert.True(problems.Count == 0, string.Join('\n', problems));
    }

    [Fact]
    public void With_the_MAC_array_at_126_relays_a_flipped_bit_is_caught_at_the_next_hop()
    {
        var parameters = new NetworkParameters { Construction = CellConstruction.MacArray, MaxRelays = 126, CellSize = 4096 };
        var random = new Random(620);
        for (var i = 0; i < 6; i++)
        {
            var receiver = i == 0 ? 127 : random.Next(1, 128);
            var bit = ForwardBit(random, parameters);
            using var tunnel = InMemoryTunnel.Open(parameters, 126, seed: 621 + i);

            var result = tunnel.SendForward(new byte[100], LinkFilter.FlipBit(Direction.Forward, receiver, 0, bit));

            TunnelAssert.FailedAt(result, TunnelErrorKind.Tampered, receiver);
        }
    }

    [Theory]
    [InlineData(CellConstruction.Baseline)]
    [InlineData(CellConstruction.MacArray)]
    public void A_flipped_bit_in_a_backward_cell_is_caught_at_the_origin(CellConstruction construction)
    {
        var parameters = new NetworkParameters { Construction = construction, CellSize = 1024 };
        var random = new Random(630 + (int)construction);
        for (var i = 0; i < 40; i++)
        {
            var receiver = random.Next(0, Relays + 1);
            var index = random.Next(3);
            var bit = random.Next(parameters.CellSize * 8);
            using var tunnel = InMemoryTunnel.Open(parameters, Relays, seed: 640 + i);
            var message = ThreeCellMessage(random, tunnel.Destination.BackwardPayloadCapacity);
            var filter = LinkFilter.FlipBit(Direction.Backward, receiver, index, bit);

            var result = tunnel.SendBackward(message, filter);

            Assert.True(filter.Applied);
            TunnelAssert.FailedAt(result, TunnelErrorKind.Tampered, 0);
        }
    }

    public static TheoryData<Direction, CellConstruction, string, int> Reorderings()
    {
        var data = new TheoryData<Direction, CellConstruction, string, int>();
        foreach (var construction in new[] { CellConstruction.Baseline, CellConstruction.MacArray })
        {
            foreach (var change in new[] { "swap", "duplicate", "drop" })
            {
                foreach (var receiver in new[] { 1, 4, Relays + 1 })
                {
                    data.Add(Direction.Forward, construction, change, receiver);
                }

                foreach (var receiver in new[] { Relays, 4, 0 })
                {
                    data.Add(Direction.Backward, construction, change, receiver);
                }
            }
        }

        return data;
    }

    /// <summary>Sequence numbers are in every nonce and MAC: order and count of cells are authenticated.</summary>
    [Theory]
    [MemberData(nameof(Reorderings))]
    public void Reordered_duplicated_or_dropped_cells_are_tampered(Direction direction, CellConstruction construction, string change, int receiver)
    {
        var parameters = new NetworkParameters { Construction = construction, CellSize = 1024 };
        using var tunnel = InMemoryTunnel.Open(parameters, Relays, seed: 650 + receiver);
        var filter = change switch
        {
            "swap" => LinkFilter.Swap(direction, receiver, 1),
            "duplicate" => LinkFilter.Duplicate(direction, receiver, 1),
            _ => LinkFilter.Drop(direction, receiver, 1),
        };
        var capacity = direction == Direction.Forward ? tunnel.Origin.ForwardPayloadCapacity : tunnel.Destination.BackwardPayloadCapacity;
        var message = new byte[(3 * capacity) + (capacity / 2)]; // four cells
        new Random(receiver).NextBytes(message);

        var result = direction == Direction.Forward ? tunnel.SendForward(message, filter) : tunnel.SendBackward(message, filter);

        Assert.True(filter.Applied);
        var detectedAt = direction == Direction.Backward ? 0
            : construction == CellConstruction.MacArray ? receiver
            : tunnel.DestinationHop;
        TunnelAssert.FailedAt(result, TunnelErrorKind.Tampered, detectedAt);
    }

    [Theory]
    [InlineData(Direction.Forward, CellConstruction.Baseline)]
    [InlineData(Direction.Forward, CellConstruction.MacArray)]
    [InlineData(Direction.Backward, CellConstruction.Baseline)]
    public void A_duplicated_end_cell_is_a_protocol_violation_at_the_receiving_end(Direction direction, CellConstruction construction)
    {
        var parameters = new NetworkParameters { Construction = construction };
        using var tunnel = InMemoryTunnel.Open(parameters, 3, seed: 660);
        var end = direction == Direction.Forward ? 4 : 0;
        var filter = LinkFilter.Duplicate(direction, end, 0);

        var result = direction == Direction.Forward ? tunnel.SendForward([1, 2], filter) : tunnel.SendBackward([1, 2], filter);

        Assert.True(filter.Applied);
        TunnelAssert.FailedAt(result, TunnelErrorKind.ProtocolViolation, end);
    }

    private static byte[] ThreeCellMessage(Random random, int capacity)
    {
        var message = new byte[(2 * capacity) + (capacity / 2)];
        random.NextBytes(message);
        return message;
    }

    // A bit anywhere in a forward cell; with the MAC array, a third each in the receiving hop's own
    // entry, the rest of the array and the body.
    private static int ForwardBit(Random random, NetworkParameters parameters)
    {
        if (parameters.Construction != CellConstruction.MacArray)
        {
            return random.Next(parameters.CellSize * 8);
        }

        var array = (parameters.MaxRelays + 1) * 16;
        return random.Next(3) switch
        {
            0 => random.Next(16 * 8),
            1 => random.Next(16 * 8, array * 8),
            _ => random.Next(array * 8, parameters.CellSize * 8),
        };
    }
}
