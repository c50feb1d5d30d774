using System.Security.Cryptography;
using Overlay.Cells;
using Overlay.Crypto;
using Overlay.Errors;
using Overlay.Protocol;
using Overlay.Tests.Support;

namespace Overlay.Tests.Cells;

/// <summary>Property and edge tests of the cell codecs, one cell at a time or through the harness.</summary>
public sealed class CellCodecTests
{
    public static TheoryData<CellConstruction, int> Seeds()
    {
        var data = new TheoryData<CellConstruction, int>();
        foreach (var construction in new[] { CellConstruction.Baseline, CellConstruction.MacArray })
        {
            for (var seed = 1; seed <= 6; seed++)
            {
                data.Add(construction, seed);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Seeds))]
    public void Messages_of_any_size_up_to_three_cells_round_trip_both_ways(CellConstruction construction, int seed)
    {
        var parameters = new NetworkParameters { Construction = construction, CellSize = 1024 };
        using var tunnel = InMemoryTunnel.Open(parameters, 2, seed: 500 + seed);
        var random = new Random(seed);
        var forwardCapacity = tunnel.Origin.ForwardPayloadCapacity;
        var backwardCapacity = tunnel.Destination.BackwardPayloadCapacity;
        int[] edges = [0, 1, forwardCapacity - 1, forwardCapacity, forwardCapacity + 1, 2 * forwardCapacity, 3 * forwardCapacity,
                       backwardCapacity - 1, backwardCapacity, backwardCapacity + 1, 3 * backwardCapacity];
        var sizes = edges.Concat(Enumerable.Range(0, 12).Select(_ => random.Next(0, (3 * forwardCapacity) + 1)));

        foreach (var size in sizes)
        {
            var style = random.Next(2) == 0 ? EndStyle.CarriesLastBytes : EndStyle.Empty;
            var request = new byte[size];
            var reply = new byte[size];
            random.NextBytes(request);
            random.NextBytes(reply);

            TunnelAssert.Delivered(request, tunnel.SendForward(request, style: style));
            TunnelAssert.Delivered(reply, tunnel.SendBackward(reply, style: style));
        }
    }

    [Fact]
    public void Split_yields_data_cells_then_exactly_one_end()
    {
        Assert.Equal([(CellType.End, 0..0)], InMemoryTunnel.Split(0, 10));
        Assert.Equal([(CellType.End, 0..10)], InMemoryTunnel.Split(10, 10));
        Assert.Equal([(CellType.Data, 0..10), (CellType.End, 10..11)], InMemoryTunnel.Split(11, 10));
        Assert.Equal([(CellType.Data, 0..10), (CellType.End, 10..10)], InMemoryTunnel.Split(10, 10, EndStyle.Empty));
        Assert.Equal([(CellType.End, 0..0)], InMemoryTunnel.Split(0, 10, EndStyle.Empty));
    }

    [Theory]
    [MemberData(nameof(Seeds))]
    public void Random_bytes_never_throw_and_never_open(CellConstruction construction, int seed)
    {
        var parameters = new NetworkParameters { Construction = construction };
        using var tunnel = InMemoryTunnel.Open(parameters, seed % 3, seed: 510 + seed);
        var random = new Random(seed);
        var cell = new byte[parameters.CellSize];
        var plaintext = new byte[tunnel.Origin.Layout.PlaintextBufferSize];

        for (var i = 0; i < 50; i++)
        {
            random.NextBytes(cell);
            var forward = tunnel.Destination.OpenForward(cell, plaintext);
            random.NextBytes(cell);
            var backward = tunnel.Origin.OpenBackward(cell, plaintext);

            Assert.Equal(OpenedCell.Failure(TunnelErrorKind.Tampered), forward);
            Assert.Equal(OpenedCell.Failure(TunnelErrorKind.Tampered), backward);
        }

        // Nothing moved: the next genuine cells still open.
        var message = new byte[100];
        random.NextBytes(message);
        TunnelAssert.Delivered(message, tunnel.SendForward(message));
        TunnelAssert.Delivered(message, tunnel.SendBackward(message));
    }

    [Theory]
    [InlineData(CellConstruction.Baseline)]
    [InlineData(CellConstruction.MacArray)]
    public void Cells_of_the_wrong_size_are_malformed(CellConstruction construction)
    {
        var parameters = new NetworkParameters { Construction = construction };
        using var tunnel = InMemoryTunnel.Open(parameters, 1, seed: 520);
        var plaintext = new byte[parameters.CellSize];

        foreach (var length in new[] { 0, 1, parameters.CellSize - 1, parameters.CellSize + 1 })
        {
            var cell = new byte[length];
            Assert.Equal(TunnelErrorKind.Malformed, tunnel.Destination.OpenForward(cell, plaintext).Error);
            Assert.Equal(TunnelErrorKind.Malformed, tunnel.Origin.OpenBackward(cell, plaintext).Error);
            Assert.Equal(TunnelErrorKind.Malformed, tunnel.RelayCodecs[0].ProcessForward(cell));
            Assert.Throws<ArgumentException>(() => tunnel.RelayCodecs[0].ProcessBackward(new byte[length]));
            Assert.Throws<ArgumentException>(() => tunnel.Origin.SealForward(CellType.Data, [], new byte[length]));
            Assert.Throws<ArgumentException>(() => tunnel.Destination.SealBackward(CellType.Data, [], new byte[length]));
        }
    }

    [Fact]
    public void A_MacArray_relay_refuses_random_bytes_as_tampered_and_stays_in_step()
    {
        var parameters = new NetworkParameters { Construction = CellConstruction.MacArray };
        using var tunnel = InMemoryTunnel.Open(parameters, 3, seed: 530);
        var random = new Random(531);
        var cell = new byte[parameters.CellSize];

        for (var i = 0; i < 50; i++)
        {
            random.NextBytes(cell);
            Assert.Equal(TunnelErrorKind.Tampered, tunnel.RelayCodecs[i % 3].ProcessForward(cell));
        }

        Assert.All(tunnel.RelayCodecs, r => Assert.Equal(0ul, r.ForwardCells));
        var message = new byte[5000];
        random.NextBytes(message);
        TunnelAssert.Delivered(message, tunnel.SendForward(message));
    }

    [Theory]
    [InlineData(CellConstruction.Baseline)]
    [InlineData(CellConstruction.MacArray)]
    public void An_oversized_payload_is_refused_without_putting_the_tunnel_out_of_step(CellConstruction construction)
    {
        var parameters = new NetworkParameters { Construction = construction };
        using var tunnel = InMemoryTunnel.Open(parameters, 2, seed: 540);
        var cell = new byte[parameters.CellSize];

        Assert.Throws<ArgumentException>(() => tunnel.Origin.SealForward(CellType.Data, new byte[tunnel.Origin.ForwardPayloadCapacity + 1], cell));
        Assert.Throws<ArgumentException>(() => tunnel.Destination.SealBackward(CellType.Data, new byte[tunnel.Destination.BackwardPayloadCapacity + 1], cell));

        Assert.Equal(0ul, tunnel.Origin.ForwardCells);
        TunnelAssert.Delivered([1, 2, 3], tunnel.SendForward([1, 2, 3]));
        TunnelAssert.Delivered([4, 5, 6], tunnel.SendBackward([4, 5, 6]));
    }

    [Fact]
    public void A_cell_does_not_open_in_the_other_direction()
    {
        var parameters = NetworkParameters.Default;
        using var tunnel = InMemoryTunnel.Open(parameters, 0, seed: 550);
        var forward = new byte[parameters.CellSize];
        var backward = new byte[parameters.CellSize];
        var plaintext = new byte[parameters.CellSize];
        tunnel.Origin.SealForward(CellType.Data, [1, 2, 3], forward);
        tunnel.Destination.SealBackward(CellType.Data, [1, 2, 3], backward);

        Assert.Equal(TunnelErrorKind.Tampered, tunnel.Origin.OpenBackward(forward.ToArray(), plaintext).Error);
        Assert.Equal(TunnelErrorKind.Tampered, tunnel.Destination.OpenForward(backward, plaintext).Error);
        Assert.Equal(CellType.Data, tunnel.Destination.OpenForward(forward, plaintext).Type);
    }

    [Fact]
    public void The_origins_error_cell_reaches_the_destination_with_its_kind()
    {
        var parameters = new NetworkParameters { Construction = CellConstruction.MacArray };
        using var tunnel = InMemoryTunnel.Open(parameters, 3, seed: 560);
        var cell = new byte[parameters.CellSize];
        var plaintext = new byte[parameters.CellSize];

        tunnel.Origin.WriteErrorCell(TunnelErrorKind.Cancelled, cell);
        Assert.All(tunnel.RelayCodecs, r => Assert.Equal(TunnelErrorKind.None, r.ProcessForward(cell)));
        var opened = tunnel.Destination.OpenForward(cell, plaintext);

        Assert.Equal(OpenedCell.Failure(TunnelErrorKind.Cancelled), opened);
    }

    [Fact]
    public void Only_the_destination_may_send_data_a_relay_sealed_data_cell_is_a_protocol_violation()
    {
        var parameters = NetworkParameters.Default;
        using var tunnel = InMemoryTunnel.Open(parameters, 3, seed: 570);
        var cell = new byte[parameters.CellSize];
        var plaintext = new byte[parameters.CellSize];

        // What relay 2 could do with its own backward seal key: a Data cell instead of an error.
        using (var relayKey = new CellAead(tunnel.OriginKeys.Hops[1].BackwardSeal))
        {
            CellSeal.Seal(relayKey, 0, CellType.Data, [1, 2, 3], cell);
        }

        tunnel.RelayCodecs[0].ProcessBackward(cell);
        var opened = tunnel.Origin.OpenBackward(cell, plaintext);

        Assert.Equal(OpenedCell.Failure(TunnelErrorKind.ProtocolViolation, 2), opened);
    }

    [Fact]
    public void A_length_field_beyond_the_cell_is_a_protocol_violation()
    {
        var parameters = NetworkParameters.Default;
        using var tunnel = InMemoryTunnel.Open(parameters, 0, seed: 580);
        var cell = new byte[parameters.CellSize];
        var plaintext = new byte[parameters.CellSize];
        using (var key = new CellAead(tunnel.OriginKeys.Hops[0].ForwardSeal))
        {
            CellSeal.Seal(key, 0, CellType.Data, [], cell);
            // Re-seal by hand with a length that claims more than the cell holds.
            var plain = new byte[parameters.CellSize - CellLayout.TagSize];
            plain[0] = (byte)CellType.Data;
            plain[1] = 0xff;
            plain[2] = 0xff;
            Span<byte> nonce = stackalloc byte[12];
            key.Encrypt(nonce, plain, cell.AsSpan(0, plain.Length), cell.AsSpan(plain.Length));
        }

        Assert.Equal(TunnelErrorKind.ProtocolViolation, tunnel.Destination.OpenForward(cell, plaintext).Error);
    }
}
