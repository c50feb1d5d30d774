using Overlay.Errors;
using Overlay.Protocol;
using Overlay.Tests.Support;

namespace Overlay.Tests.Cells;

/// <summary>
/// Guarantee 8 (docs/protocol.md): a hop's error cell says only the reason; the origin learns which hop failed from
/// the key that authenticates it. The relays before the failing one still add their layers.
/// </summary>
public sealed class ErrorCellTests
{
    public static TheoryData<CellConstruction, int, int, bool> Positions()
    {
        var data = new TheoryData<CellConstruction, int, int, bool>();
        foreach (var construction in new[] { CellConstruction.Baseline, CellConstruction.MacArray })
        {
            foreach (var relays in new[] { 1, 3, 8 })
            {
                for (var hop = 1; hop <= relays + 1; hop++)
                {
                    data.Add(construction, relays, hop, false);
                    data.Add(construction, relays, hop, true);
                }
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Positions))]
    public void The_origin_names_exactly_the_hop_that_wrote_the_error_cell(CellConstruction construction, int relays, int hop, bool afterTraffic)
    {
        var parameters = new NetworkParameters { Construction = construction, CellSize = 1024 };
        using var tunnel = InMemoryTunnel.Open(parameters, relays, seed: 800 + (100 * relays) + hop);
        if (afterTraffic)
        {
            // Sequence numbers are past zero in both directions before the error.
            var message = new byte[2500];
            new Random(hop).NextBytes(message);
            TunnelAssert.Delivered(message, tunnel.SendForward(message));
            TunnelAssert.Delivered(message, tunnel.SendBackward(message));
            Assert.Equal(3ul, tunnel.RelayCodecs[0].BackwardCells);
        }

        var kind = hop == tunnel.DestinationHop ? TunnelErrorKind.DestinationRefused : TunnelErrorKind.NextHopUnreachable;

        var result = tunnel.SendError(hop, kind);

        TunnelAssert.FailedAt(result, kind, 0, hop);
        // One cell crossed each link between the failing hop and the origin, and only those.
        Assert.Equal(Enumerable.Range(0, hop), result.Links.Keys);
        Assert.All(result.Links.Values, l => Assert.Equal(1, l.Cells));
    }

    [Fact]
    public void Every_wire_kind_from_a_relay_arrives_as_that_kind()
    {
        using var tunnel = InMemoryTunnel.Open(NetworkParameters.Default, 3, seed: 850);

        // Errors from one hop keep every codec in step, so one tunnel carries them all.
        foreach (var kind in Enum.GetValues<TunnelErrorKind>().Where(k => k != TunnelErrorKind.None))
        {
            TunnelAssert.FailedAt(tunnel.SendError(2, kind), kind, 0, 2);
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(25)]
    [InlineData(200)]
    [InlineData(255)]
    public void An_error_code_the_origin_does_not_know_is_a_protocol_violation_of_that_hop(byte code)
    {
        for (var hop = 1; hop <= 4; hop++)
        {
            using var tunnel = InMemoryTunnel.Open(NetworkParameters.Default, 3, seed: 860 + hop);

            TunnelAssert.FailedAt(tunnel.SendError(hop, (TunnelErrorKind)code), TunnelErrorKind.ProtocolViolation, 0, hop);
        }
    }

    [Fact]
    public void With_no_relays_the_destination_is_hop_1()
    {
        using var tunnel = InMemoryTunnel.Open(NetworkParameters.Default, 0, seed: 870);

        TunnelAssert.FailedAt(tunnel.SendError(1, TunnelErrorKind.HandlerFailed), TunnelErrorKind.HandlerFailed, 0, 1);
    }

    [Theory]
    [InlineData(1, 0)]
    [InlineData(3, 0)]
    [InlineData(3, 2)]
    [InlineData(4, 3)]
    public void A_modified_error_cell_is_tampered_and_attributed_to_no_hop(int hop, int receiver)
    {
        using var tunnel = InMemoryTunnel.Open(NetworkParameters.Default, 3, seed: 880 + hop);
        var filter = LinkFilter.FlipBit(Direction.Backward, receiver, 0, 8 * 100);

        var result = tunnel.SendError(hop, TunnelErrorKind.LinkLost, filter);

        Assert.True(filter.Applied);
        TunnelAssert.FailedAt(result, TunnelErrorKind.Tampered, 0, 0);
    }

    [Fact]
    public void An_error_cell_looks_like_any_other_cell_on_every_link()
    {
        using var tunnel = InMemoryTunnel.Open(NetworkParameters.Default, 3, seed: 890);
        var error = LinkFilter.Capture(Direction.Backward, 0);
        var data = LinkFilter.Capture(Direction.Backward, 0);

        tunnel.SendError(2, TunnelErrorKind.Busy, error);
        using var other = InMemoryTunnel.Open(NetworkParameters.Default, 3, seed: 891);
        other.SendBackward([1], data);

        var errorCell = error.Cells.Single();
        Assert.Equal(data.Cells.Single().Length, errorCell.Length);
        // The inner header (type Error, length 1, the kind) is not readable on the wire.
        Assert.False(errorCell.AsSpan(0, 4).SequenceEqual(new byte[] { 3, 0, 1, (byte)TunnelErrorKind.Busy }));
        Assert.True(errorCell.AsSpan(4).IndexOfAnyExcept((byte)0) >= 0, "zero padding visible on the wire");
    }
}
