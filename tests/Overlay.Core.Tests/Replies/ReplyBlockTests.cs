using System.Buffers.Binary;
using Overlay.Cells;
using Overlay.Errors;
using Overlay.Onion;
using Overlay.Protocol;
using Overlay.Replies;
using Overlay.Tests.Support;

namespace Overlay.Tests.Replies;

/// <summary>
/// Reply blocks (docs/protocol.md §7.8) through real header processing and real relay codecs: the
/// holder seals bare end-to-end cells, every relay of the reply route adds its layer as it would to
/// any forward cell, the maker strips them and opens; the maker's receipt comes back readable by the
/// holder alone.
/// </summary>
public sealed class ReplyBlockTests
{
    private static readonly NetworkParameters Parameters = NetworkParameters.Default;
    private static readonly DateTimeOffset Now = DateTimeOffset.UtcNow;

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(3)]
    public void A_reply_over_a_block_reaches_its_maker_and_the_holder_reads_the_receipt(int relays)
    {
        using var network = new TestNetwork(Parameters, relays + 1, seed: 7);
        var (encoded, secret) = Make(network, relays);
        using var _ = secret;
        var reply = "the tally is 12 to 8"u8.ToArray();

        using var block = Parse(encoded);
        using var holder = block.CreateCodec(Parameters, Now);
        var cells = new byte[Parameters.CellSize];
        Assert.Equal(reply.Length, holder.SealForwardCells(reply, final: true, cells));

        using var route = Walk(network, relays, block.Header.ToArray(), secret);
        Assert.True(route.Maker.ReplyId.Span.SequenceEqual(secret.ReplyId.Span));
        foreach (var relay in route.Relays)
        {
            Assert.Equal(TunnelErrorKind.None, relay.ProcessForward(cells));
        }

        var plaintext = new byte[route.Destination.Layout.PlaintextBufferSize];
        var opened = route.Destination.OpenForward(cells, plaintext);
        Assert.Equal(CellType.End, opened.Type);
        Assert.Equal(reply, plaintext.AsSpan(OpenedCell.PayloadOffset, opened.PayloadLength).ToArray());

        // Backward: the maker's receipt crosses the relays in reverse and opens at the holder unchanged.
        route.Destination.WriteReceipt(cells);
        for (var i = route.Relays.Count - 1; i >= 0; i--)
        {
            route.Relays[i].ProcessBackward(cells);
        }

        var receipt = holder.OpenBackward(cells, plaintext);
        Assert.Equal(CellType.Receipt, receipt.Type);
        Assert.Equal(1UL, BinaryPrimitives.ReadUInt64BigEndian(plaintext.AsSpan(OpenedCell.PayloadOffset)));
    }

    [Fact]
    public void A_block_used_twice_is_refused_at_its_first_hop()
    {
        using var network = new TestNetwork(Parameters, 3, seed: 8);
        var (encoded, secret) = Make(network, 2);
        using var _ = secret;
        using var block = Parse(encoded);
        var next = new byte[block.Header.Length];
        using (var first = network.Nodes[0].Processor.Process(block.Header.Span, next))
        {
            Assert.Equal(HeaderOutcome.Relay, first.Outcome);
        }

        using var again = network.Nodes[0].Processor.Process(block.Header.Span, next);
        Assert.Equal(TunnelErrorKind.Replayed, again.Rejection);
    }

    [Fact]
    public void An_expired_block_is_refused_by_its_holder()
    {
        using var network = new TestNetwork(Parameters, 2, seed: 9);
        var (encoded, secret) = Make(network, 1, lifetime: TimeSpan.FromMinutes(10));
        using var _ = secret;
        Assert.Equal(TunnelErrorKind.None, ReplyBlock.TryParse(encoded, Parameters, Now.AddMinutes(9), out var valid));
        valid!.Dispose();
        Assert.Equal(TunnelErrorKind.Expired, ReplyBlock.TryParse(encoded, Parameters, Now.AddMinutes(10), out var expired));
        Assert.Null(expired);
    }

    [Fact]
    public void A_block_parsed_in_time_is_refused_when_used_after_its_expiry()
    {
        using var network = new TestNetwork(Parameters, 2, seed: 15);
        var (encoded, secret) = Make(network, 1, lifetime: TimeSpan.FromMinutes(10));
        using var owned = secret;
        using var block = Parse(encoded);

        var failure = Assert.Throws<TunnelException>(() => block.CreateCodec(Parameters, Now.AddMinutes(10)));

        Assert.Equal(TunnelErrorKind.Expired, failure.Kind);
    }

    [Fact]
    public void A_tampered_header_fails_at_the_hop_whose_layer_it_touched()
    {
        using var network = new TestNetwork(Parameters, 3, seed: 10);
        var (encoded, secret) = Make(network, 2);
        using var _ = secret;
        using var block = Parse(encoded);
        var header = block.Header.ToArray();
        header[^1] ^= 1; // hop 1's MAC
        using var result = network.Nodes[0].Processor.Process(header, new byte[header.Length]);
        Assert.Equal(TunnelErrorKind.Tampered, result.Rejection);
    }

    [Fact]
    public void A_reply_opened_with_another_blocks_secret_fails_and_the_ids_differ()
    {
        using var network = new TestNetwork(Parameters, 3, seed: 11);
        var (encoded, secret) = Make(network, 2);
        var (_, other) = Make(network, 2);
        using var a = secret;
        using var b = other;
        Assert.False(other.Matches(secret.ReplyId.Span));

        using var block = Parse(encoded);
        using var holder = block.CreateCodec(Parameters, Now);
        var cells = new byte[Parameters.CellSize];
        holder.SealForwardCells("x"u8, final: true, cells);
        using var route = Walk(network, 2, block.Header.ToArray(), other);
        foreach (var relay in route.Relays)
        {
            relay.ProcessForward(cells);
        }

        var opened = route.Destination.OpenForward(cells, new byte[route.Destination.Layout.PlaintextBufferSize]);
        Assert.Equal(TunnelErrorKind.Tampered, opened.Error);
    }

    [Fact]
    public void The_holder_of_a_block_cannot_read_a_relays_error_cell()
    {
        using var network = new TestNetwork(Parameters, 3, seed: 12);
        var (encoded, secret) = Make(network, 2);
        using var _ = secret;
        using var block = Parse(encoded);
        using var holder = block.CreateCodec(Parameters, Now);
        using var route = Walk(network, 2, block.Header.ToArray(), secret);
        var cell = new byte[Parameters.CellSize];
        route.Relays[1].WriteErrorCell(TunnelErrorKind.NextHopUnreachable, cell, nextHop: true);
        route.Relays[0].ProcessBackward(cell);
        var opened = holder.OpenBackward(cell, new byte[route.Destination.Layout.PlaintextBufferSize]);
        Assert.Equal(TunnelErrorKind.Tampered, opened.Error);
    }

    [Fact]
    public void Block_and_secret_survive_their_encodings()
    {
        using var network = new TestNetwork(Parameters, 3, seed: 13);
        var (encoded, secret) = Make(network, 2);
        using var owned = secret;
        Assert.Equal(ReplyBlock.SizeFor(Parameters), encoded.Length);
        using var block = Parse(encoded);
        Assert.Equal(encoded, block.Encode());
        Assert.Equal(network.Nodes[0].Id, block.FirstHop);

        Assert.True(ReplyBlockSecret.TryDecode(secret.Encode(), out var decoded));
        using var copy = decoded!;
        Assert.True(copy.Matches(secret.ReplyId.Span));
        Assert.Equal(secret.ExpiresAt, copy.ExpiresAt);
        Assert.Equal(2, copy.RelayCount);
        Assert.Equal(secret.Encode(), copy.Encode());
        Assert.False(ReplyBlockSecret.TryDecode(secret.Encode()[..^1], out _));
        Assert.Equal(TunnelErrorKind.Malformed, ReplyBlock.TryParse(encoded[..^1], Parameters, Now, out _));
    }

    [Fact]
    public void A_mac_array_network_has_no_reply_blocks()
    {
        var macArray = Parameters with { Construction = CellConstruction.MacArray };
        using var network = new TestNetwork(macArray, 2, seed: 14);
        var builder = new OnionHeaderBuilder(macArray, new SeededOnionRandom(14));
        Assert.Throws<InvalidOperationException>(() => ReplyBlocks.Create(builder, network.Route(1), DeadlineClass.Seconds30, Now.AddHours(1), out _));
    }

    // Relays are nodes 0..relays-1, the maker node `relays` (the last of the route).
    private static (byte[] Encoded, ReplyBlockSecret Secret) Make(TestNetwork network, int relays, TimeSpan? lifetime = null)
    {
        var builder = new OnionHeaderBuilder(Parameters);
        using var block = ReplyBlocks.Create(builder, network.Route(relays), DeadlineClass.Seconds30, Now.AddTicks((lifetime ?? TimeSpan.FromHours(1)).Ticks), out var secret);
        return (block.Encode(), secret);
    }

    private static ReplyBlock Parse(byte[] encoded)
    {
        Assert.Equal(TunnelErrorKind.None, ReplyBlock.TryParse(encoded, Parameters, Now, out var block));
        return block!;
    }

    // Processes the header hop by hop as the nodes would; the maker opens it with the block's secret.
    private static ReplyRoute Walk(TestNetwork network, int relays, byte[] header, ReplyBlockSecret secret)
    {
        var codecs = new List<RelayCellCodec>();
        for (var hop = 0; hop < relays; hop++)
        {
            var next = new byte[header.Length];
            using var result = network.Nodes[hop].Processor.Process(header, next);
            Assert.Equal(HeaderOutcome.Relay, result.Outcome);
            codecs.Add(result.CreateRelayCodec(Parameters));
            header = next;
        }

        var maker = network.Nodes[relays].Processor.Process(header, new byte[header.Length]);
        Assert.Equal(HeaderOutcome.Deliver, maker.Outcome);
        Assert.Equal(TunnelMode.ReplyBlock, maker.Mode);
        Assert.Null(maker.Service);
        var destination = maker.CreateDestinationCodec(Parameters, secret);
        return new ReplyRoute(codecs, destination, maker);
    }

    private sealed record ReplyRoute(List<RelayCellCodec> Relays, DestinationCellCodec Destination, HeaderResult Maker) : IDisposable
    {
        public void Dispose()
        {
            Relays.ForEach(r => r.Dispose());
            Destination.Dispose();
            Maker.Dispose();
        }
    }
}
