using Overlay.Cells;
using Overlay.Onion;
using Overlay.Protocol;
using Overlay.Tests.Support;

namespace Overlay.Tests;

public sealed class SmokeTests
{
    [Theory]
    [InlineData(CellConstruction.Baseline, 0)]
    [InlineData(CellConstruction.Baseline, 3)]
    [InlineData(CellConstruction.MacArray, 0)]
    [InlineData(CellConstruction.MacArray, 3)]
    [InlineData(CellConstruction.MacArray, 32)]
    public void Header_and_cells_round_trip(CellConstruction construction, int relays)
    {
        var parameters = new NetworkParameters { Construction = construction };
        using var network = new TestNetwork(parameters, relays + 1);
        var builder = new OnionHeaderBuilder(parameters);
        var header = new byte[builder.HeaderSize];
        using var origin = new OriginCellCodec(parameters, builder.Build(network.Route(relays), TunnelMode.Duplex, DeadlineClass.Seconds30, header));

        var relayCodecs = new List<RelayCellCodec>();
        DestinationCellCodec? destination = null;
        var next = new byte[header.Length];
        for (var hop = 0; hop <= relays; hop++)
        {
            using var result = network.Nodes[hop].Processor.Process(header, next);
            if (hop < relays)
            {
                Assert.Equal(HeaderOutcome.Relay, result.Outcome);
                Assert.Equal(network.Nodes[hop + 1].Id, result.NextHop);
                relayCodecs.Add(result.CreateRelayCodec(parameters));
                (header, next) = (next, header);
            }
            else
            {
                Assert.Equal(HeaderOutcome.Deliver, result.Outcome);
                destination = result.CreateDestinationCodec(parameters);
            }
        }

        var cell = new byte[parameters.CellSize];
        var plain = new byte[cell.Length];
        for (var n = 0; n < 3; n++)
        {
            origin.SealForward(CellType.Data, [1, 2, 3, (byte)n], cell);
            foreach (var relay in relayCodecs)
            {
                Assert.Equal(Errors.TunnelErrorKind.None, relay.ProcessForward(cell));
            }

            var opened = destination!.OpenForward(cell, plain);
            Assert.Equal(CellType.Data, opened.Type);
            Assert.Equal(new byte[] { 1, 2, 3, (byte)n }, plain.AsSpan(OpenedCell.PayloadOffset, opened.PayloadLength).ToArray());

            destination.SealBackward(CellType.End, [9, (byte)n], cell);
            for (var i = relayCodecs.Count - 1; i >= 0; i--)
            {
                relayCodecs[i].ProcessBackward(cell);
            }

            var back = origin.OpenBackward(cell, plain);
            Assert.Equal(CellType.End, back.Type);
            Assert.Equal(new byte[] { 9, (byte)n }, plain.AsSpan(OpenedCell.PayloadOffset, back.PayloadLength).ToArray());
        }
    }
}
