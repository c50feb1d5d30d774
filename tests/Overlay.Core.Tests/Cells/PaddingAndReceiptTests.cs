using System.Buffers.Binary;
using Overlay.Cells;
using Overlay.Errors;
using Overlay.Protocol;
using Overlay.Tests.Support;

namespace Overlay.Tests.Cells;

/// <summary>
/// Padding keeps a quiet tunnel alive and is discarded at the other end; a receipt tells the origin
/// of a one-way tunnel how many forward cells the destination accepted (docs/protocol.md §7.1).
/// </summary>
public sealed class PaddingAndReceiptTests
{
    public static TheoryData<CellConstruction, int> Networks() => new()
    {
        { CellConstruction.Baseline, 0 },
        { CellConstruction.Baseline, 3 },
        { CellConstruction.MacArray, 3 },
    };

    [Theory]
    [MemberData(nameof(Networks))]
    public void A_forward_padding_cell_crosses_every_relay_and_opens_empty_at_the_destination(CellConstruction construction, int relays)
    {
        var parameters = new NetworkParameters { MaxRelays = 4, CellSize = 1024, Construction = construction };
        using var tunnel = InMemoryTunnel.Open(parameters, relays, seed: 1000 + relays);
        var cell = new byte[parameters.CellSize];

        tunnel.Origin.SealForward(CellType.Padding, [], cell);
        foreach (var relay in tunnel.RelayCodecs)
        {
            Assert.Equal(TunnelErrorKind.None, relay.ProcessForward(cell));
        }

        var opened = tunnel.Destination.OpenForward(cell, new byte[parameters.CellSize]);
        Assert.Equal(new OpenedCell(CellType.Padding, 0, TunnelErrorKind.None, 0), opened);
        Assert.Equal(1ul, tunnel.Destination.ForwardCells);
    }

    [Theory]
    [MemberData(nameof(Networks))]
    public void A_receipt_counts_every_forward_cell_and_opens_only_at_the_origin(CellConstruction construction, int relays)
    {
        var parameters = new NetworkParameters { MaxRelays = 4, CellSize = 1024, Construction = construction };
        using var tunnel = InMemoryTunnel.Open(parameters, relays, seed: 1100 + relays);
        var cell = new byte[parameters.CellSize];
        var plaintext = new byte[parameters.CellSize];
        CellType[] sent = [CellType.Data, CellType.Padding, CellType.Data, CellType.End];
        foreach (var type in sent)
        {
            tunnel.Origin.SealForward(type, type == CellType.Padding ? [] : [1, 2, 3], cell);
            foreach (var relay in tunnel.RelayCodecs)
            {
                Assert.Equal(TunnelErrorKind.None, relay.ProcessForward(cell));
            }

            Assert.Equal(type, tunnel.Destination.OpenForward(cell, plaintext).Type);
        }

        tunnel.Destination.WriteReceipt(cell);
        for (var i = tunnel.RelayCodecs.Count - 1; i >= 0; i--)
        {
            tunnel.RelayCodecs[i].ProcessBackward(cell);
        }

        var receipt = tunnel.Origin.OpenBackward(cell, plaintext);
        Assert.Equal(CellType.Receipt, receipt.Type);
        Assert.Equal(relays + 1, receipt.Hop);
        Assert.Equal((ulong)sent.Length, BinaryPrimitives.ReadUInt64BigEndian(plaintext.AsSpan(OpenedCell.PayloadOffset, receipt.PayloadLength)));
    }

    [Fact]
    public void Backward_padding_opens_empty_at_the_origin()
    {
        var parameters = new NetworkParameters { MaxRelays = 4, CellSize = 1024 };
        using var tunnel = InMemoryTunnel.Open(parameters, 2, seed: 1200);
        var cell = new byte[parameters.CellSize];

        tunnel.Destination.SealBackward(CellType.Padding, [], cell);
        tunnel.RelayCodecs[1].ProcessBackward(cell);
        tunnel.RelayCodecs[0].ProcessBackward(cell);

        var opened = tunnel.Origin.OpenBackward(cell, new byte[parameters.CellSize]);
        Assert.Equal(CellType.Padding, opened.Type);
        Assert.Equal(0, opened.PayloadLength);
    }

    [Fact]
    public void Padding_with_a_payload_is_never_sealed()
    {
        var parameters = new NetworkParameters { MaxRelays = 4, CellSize = 1024 };
        using var tunnel = InMemoryTunnel.Open(parameters, 1, seed: 1300);

        Assert.Throws<ArgumentOutOfRangeException>(() => tunnel.Destination.SealBackward(CellType.Padding, [1], new byte[parameters.CellSize]));
    }

    [Fact]
    public void A_forward_receipt_is_a_protocol_violation()
    {
        var parameters = new NetworkParameters { MaxRelays = 4, CellSize = 1024 };
        using var tunnel = InMemoryTunnel.Open(parameters, 0, seed: 1400);
        var cell = new byte[parameters.CellSize];

        tunnel.Origin.SealForward(CellType.Receipt, new byte[8], cell);

        Assert.Equal(TunnelErrorKind.ProtocolViolation, tunnel.Destination.OpenForward(cell, new byte[parameters.CellSize]).Error);
    }

    [Fact]
    public void A_next_hop_report_names_the_successor_but_is_reported_by_the_relay()
    {
        var parameters = new NetworkParameters { MaxRelays = 4, CellSize = 1024 };
        using var tunnel = InMemoryTunnel.Open(parameters, 3, seed: 1500);
        var cell = new byte[parameters.CellSize];

        tunnel.RelayCodecs[1].WriteErrorCell(TunnelErrorKind.NextHopUnreachable, cell, nextHop: true);
        tunnel.RelayCodecs[0].ProcessBackward(cell);

        var opened = tunnel.Origin.OpenBackward(cell, new byte[parameters.CellSize]);
        Assert.Equal(TunnelErrorKind.NextHopUnreachable, opened.Error);
        Assert.Equal(3, opened.Hop);
        Assert.Equal(2, opened.ReportedBy);
    }
}
