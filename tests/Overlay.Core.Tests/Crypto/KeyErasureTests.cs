using System.Reflection;
using Overlay.Cells;
using Overlay.Crypto;
using Overlay.Errors;
using Overlay.Onion;
using Overlay.Protocol;
using Overlay.Tests.Support;

namespace Overlay.Tests.Crypto;

/// <summary>
/// Guarantee 5 (docs/protocol.md): per-tunnel keys are erased when the tunnel closes, and nothing keeps working on
/// erased keys. Where the code under test holds key bytes privately, the bytes are read by
/// reflection right after disposal, on the same thread, before any other pool rental.
/// </summary>
public sealed class KeyErasureTests
{
    private static readonly NetworkParameters Parameters = new() { Construction = CellConstruction.MacArray };

    [Fact]
    public void Disposing_hop_keys_zeroes_their_bytes_and_later_use_throws()
    {
        using var tunnel = InMemoryTunnel.Open(Parameters, 1, seed: 1000);
        using var result = tunnel.NodeAt(1).Processor.Process(Rebuild(tunnel, 1), new byte[OnionHeader.SizeFor(Parameters)]);
        var keys = result.TakeKeys();
        var buffer = (byte[])typeof(HopKeys).GetField("_buffer", BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(keys)!;
        const int keyBytes = 272;
        Assert.True(buffer.AsSpan(0, keyBytes).IndexOfAnyExcept((byte)0) >= 0);

        keys.Dispose();

        Assert.True(buffer.AsSpan(0, keyBytes).IndexOfAnyExcept((byte)0) < 0, "key bytes left in the pooled buffer");
        Assert.Throws<ObjectDisposedException>(() => keys.ForwardLayer.Length);
        Assert.Throws<ObjectDisposedException>(() => keys.ReplayTag);
        keys.Dispose(); // twice is harmless
    }

    [Fact]
    public void A_disposed_header_result_gives_no_codec()
    {
        using var tunnel = InMemoryTunnel.Open(Parameters, 1, seed: 1010);
        var header = Rebuild(tunnel, 1);
        var next = new byte[header.Length];
        var relay = tunnel.NodeAt(1).Processor.Process(header, next);
        var destination = tunnel.NodeAt(2).Processor.Process(next, new byte[header.Length]);
        Assert.Equal(HeaderOutcome.Relay, relay.Outcome);
        Assert.Equal(HeaderOutcome.Deliver, destination.Outcome);

        relay.Dispose();
        destination.Dispose();

        // The code reports "keys already taken" (InvalidOperationException, the base of ObjectDisposedException).
        Assert.Throws<InvalidOperationException>(() => relay.CreateRelayCodec(Parameters));
        Assert.Throws<InvalidOperationException>(() => destination.CreateDestinationCodec(Parameters));
        Assert.Throws<InvalidOperationException>(() => relay.TakeKeys());
    }

    [Fact]
    public void A_header_result_hands_its_keys_over_once_and_disposing_it_afterwards_leaves_the_codec_working()
    {
        using var tunnel = InMemoryTunnel.Open(Parameters, 0, seed: 1020);
        var result = tunnel.NodeAt(1).Processor.Process(Rebuild(tunnel, 2, out var origin), new byte[OnionHeader.SizeFor(Parameters)]);
        using var codec = result.CreateDestinationCodec(Parameters);
        result.Dispose();

        Assert.Throws<InvalidOperationException>(() => result.CreateDestinationCodec(Parameters));
        Assert.Throws<InvalidOperationException>(() => result.CreateRelayCodec(Parameters));
        var cell = new byte[Parameters.CellSize];
        var plaintext = new byte[Parameters.CellSize];
        using (origin)
        {
            origin.SealForward(CellType.End, [42], cell);
        }

        var opened = codec.OpenForward(cell, plaintext);
        Assert.Equal(CellType.End, opened.Type);
        Assert.Equal(42, plaintext[OpenedCell.PayloadOffset]);
    }

    [Fact]
    public void A_rejected_header_has_no_keys_to_give()
    {
        using var tunnel = InMemoryTunnel.Open(Parameters, 0, seed: 1030);
        using var replay = tunnel.NodeAt(1).Processor.Process(tunnel.HeaderReceivedBy(1), new byte[OnionHeader.SizeFor(Parameters)]);

        Assert.Equal(TunnelErrorKind.Replayed, replay.Rejection);
        Assert.Throws<InvalidOperationException>(() => replay.CreateDestinationCodec(Parameters));
        Assert.Throws<InvalidOperationException>(() => replay.CreateRelayCodec(Parameters));
    }

    [Fact]
    public void A_disposed_origin_codec_erases_every_hop_key_and_refuses_work()
    {
        var tunnel = InMemoryTunnel.Open(Parameters, 3, seed: 1040);
        var keys = tunnel.OriginKeys;
        var origin = tunnel.Origin;
        var cell = new byte[Parameters.CellSize];

        tunnel.Dispose();

        Assert.All(keys.Hops, k => Assert.Throws<ObjectDisposedException>(() => k.BackwardSeal.Length));
        Assert.Throws<ObjectDisposedException>(() => origin.SealForward(CellType.Data, [1], cell));
        Assert.Throws<ObjectDisposedException>(() => origin.WriteErrorCell(TunnelErrorKind.Cancelled, cell));
        Assert.Throws<ObjectDisposedException>(() => origin.OpenBackward(cell, new byte[Parameters.CellSize]));
        origin.Dispose();
    }

    [Theory]
    [InlineData(CellConstruction.Baseline)]
    [InlineData(CellConstruction.MacArray)]
    public void A_disposed_relay_codec_erases_its_error_key_and_refuses_work(CellConstruction construction)
    {
        var parameters = new NetworkParameters { Construction = construction };
        var tunnel = InMemoryTunnel.Open(parameters, 2, seed: 1050);
        var relay = tunnel.RelayCodecs[1];
        var errorSeal = (CellAead)typeof(RelayCellCodec).GetField("_errorSeal", BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(relay)!;
        var cell = new byte[parameters.CellSize];

        tunnel.Dispose();

        // The error key's state (native memory, zeroed when freed) is gone: nothing can seal with it.
        Assert.Throws<ObjectDisposedException>(() => errorSeal.Encrypt(new byte[CellAead.NonceSize], cell, cell, new byte[CellAead.TagSize]));
        Assert.Throws<ObjectDisposedException>(() => relay.ProcessForward(cell));
        Assert.Throws<ObjectDisposedException>(() => relay.ProcessBackward(cell));
        Assert.Throws<ObjectDisposedException>(() => relay.WriteErrorCell(TunnelErrorKind.LinkLost, cell));
        relay.Dispose();
    }

    [Theory]
    [InlineData(CellConstruction.Baseline)]
    [InlineData(CellConstruction.MacArray)]
    public void A_disposed_destination_codec_refuses_work(CellConstruction construction)
    {
        var parameters = new NetworkParameters { Construction = construction };
        var tunnel = InMemoryTunnel.Open(parameters, 1, seed: 1060);
        var destination = tunnel.Destination;
        var cell = new byte[parameters.CellSize];

        tunnel.Dispose();

        Assert.Throws<ObjectDisposedException>(() => destination.OpenForward(cell, new byte[parameters.CellSize]));
        Assert.Throws<ObjectDisposedException>(() => destination.SealBackward(CellType.Data, [1], cell));
        Assert.Throws<ObjectDisposedException>(() => destination.WriteErrorCell(TunnelErrorKind.HandlerFailed, cell));
        destination.Dispose();
    }

    [Fact]
    public void Disposing_origin_tunnel_keys_erases_every_hop()
    {
        using var network = new TestNetwork(Parameters, 3, seed: 1070);
        var builder = new OnionHeaderBuilder(Parameters, new SeededOnionRandom(1071));
        var keys = builder.Build(network.Route(2), TunnelMode.Duplex, DeadlineClass.Seconds5, new byte[builder.HeaderSize]);
        Assert.Equal(3, keys.HopCount);

        keys.Dispose();

        Assert.All(keys.Hops, k => Assert.Throws<ObjectDisposedException>(() => k.HeaderMac.Length));
    }

    // A header for the tunnel's route that its hops have not seen yet.
    private static byte[] Rebuild(InMemoryTunnel tunnel, int seed)
    {
        var header = Rebuild(tunnel, seed, out var origin);
        origin.Dispose();
        return header;
    }

    // Seeds here are small; tunnels in this class use seeds >= 1000, so no ephemeral key repeats.
    private static byte[] Rebuild(InMemoryTunnel tunnel, int seed, out OriginCellCodec origin)
    {
        var builder = new OnionHeaderBuilder(tunnel.Parameters, new SeededOnionRandom(seed));
        var header = new byte[builder.HeaderSize];
        origin = new OriginCellCodec(tunnel.Parameters, builder.Build(tunnel.Network.Route(tunnel.Relays), TunnelMode.Duplex, DeadlineClass.Seconds5, header));
        return header;
    }
}
