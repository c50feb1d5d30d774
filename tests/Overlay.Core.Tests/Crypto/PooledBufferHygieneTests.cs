using System.Buffers;
using System.Reflection;
using Overlay.Cells;
using Overlay.Crypto;
using Overlay.Errors;
using Overlay.Protocol;
using Overlay.Tests.Support;

namespace Overlay.Tests.Crypto;

/// <summary>
/// Keystream and keys never outlive the call that used them in shared memory: a pooled buffer goes
/// back to its pool cleared, and a codec keeps no key bytes in a managed array (which the GC may copy
/// and nobody zeroes). The shared pool hands a thread back the array it returned last for the same
/// size class, so renting right after the call, on the same thread, shows what the call left in it.
/// </summary>
public sealed class PooledBufferHygieneTests
{
    private static readonly byte[] Key = Enumerable.Range(1, AesCtr.KeySize).Select(i => (byte)i).ToArray();

    [Fact]
    public void AesCtr_xor_returns_its_buffer_without_keystream()
    {
        using var ctr = new AesCtr(Key);
        var data = new byte[1000];
        ctr.Xor(7, data);

        // 1,000 bytes are 63 blocks: the buffer held 1,008 bytes of keystream.
        AssertPoolHoldsNoSecret(1008, data);
    }

    [Fact]
    public void AesCtr_xor_cells_returns_its_buffer_without_keystream()
    {
        using var ctr = new AesCtr(Key);
        var cells = new byte[3 * 1024];
        ctr.XorCells(11, cells, 1024);

        AssertPoolHoldsNoSecret(cells.Length, cells.AsSpan(0, 1024).ToArray());
    }

    [Theory]
    [InlineData(CellConstruction.Baseline)]
    [InlineData(CellConstruction.MacArray)]
    public void Sealing_at_the_origin_returns_every_buffer_without_keystream(CellConstruction construction)
    {
        var parameters = new NetworkParameters { Construction = construction, CellSize = 1024 };
        using var tunnel = InMemoryTunnel.Open(parameters, 3, seed: 4600);
        // Every relay layer's keystream of sequence 0 (computed first: it goes through the pool too); the
        // MAC array keeps all three at once.
        var keystreams = tunnel.OriginKeys.Hops.Take(3).Select(h => Keystream(h.ForwardLayer, 0, parameters.CellSize)).ToArray();
        var cell = new byte[parameters.CellSize];
        tunnel.Origin.SealForward(CellType.Data, [1, 2, 3], cell);

        if (construction == CellConstruction.MacArray)
        {
            AssertPoolHoldsNoSecret(3 * parameters.CellSize, keystreams[0]);
        }

        AssertPoolHoldsNoSecret(parameters.CellSize, keystreams[2]);
    }

    [Fact]
    public void Relay_processing_returns_its_buffer_without_keystream()
    {
        var parameters = new NetworkParameters { Construction = CellConstruction.Baseline, CellSize = 4096 };
        using var tunnel = InMemoryTunnel.Open(parameters, 1, seed: 4700);
        var relay = tunnel.RelayCodecs[0];
        var first = Keystream(tunnel.OriginKeys.Hops[0].BackwardLayer, 0, parameters.CellSize);
        var second = Keystream(tunnel.OriginKeys.Hops[0].BackwardLayer, 1, parameters.CellSize);

        relay.ProcessBackward(new byte[parameters.CellSize]);
        AssertPoolHoldsNoSecret(parameters.CellSize, first);

        relay.ProcessBackwardCells(new byte[2 * parameters.CellSize]);
        AssertPoolHoldsNoSecret(2 * parameters.CellSize, second);
    }

    [Fact]
    public void No_codec_or_cipher_keeps_key_bytes_in_a_managed_array()
    {
        foreach (var type in new[] { typeof(OriginCellCodec), typeof(RelayCellCodec), typeof(DestinationCellCodec), typeof(AesCtr), typeof(CellAead), typeof(MacArrayKey) })
        {
            foreach (var field in type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic))
            {
                Assert.False(field.FieldType == typeof(byte[]), $"{type.Name}.{field.Name} is a byte[]");
            }
        }
    }

    [Fact]
    public void A_relay_error_cell_written_after_traffic_opens_at_the_origin_and_none_is_written_after_dispose()
    {
        var parameters = new NetworkParameters { Construction = CellConstruction.MacArray, CellSize = 1024 };
        using var tunnel = InMemoryTunnel.Open(parameters, 2, seed: 4800);
        var message = new byte[3000];
        new Random(4800).NextBytes(message);
        TunnelAssert.Delivered(message, tunnel.SendBackward(message));

        TunnelAssert.FailedAt(tunnel.SendError(2, TunnelErrorKind.NextHopUnreachable), TunnelErrorKind.NextHopUnreachable, 0, 2);

        var relay = tunnel.RelayCodecs[0];
        relay.Dispose();
        Assert.Throws<ObjectDisposedException>(() => relay.WriteErrorCell(TunnelErrorKind.NextHopUnreachable, new byte[parameters.CellSize]));
    }

    private static byte[] Keystream(ReadOnlySpan<byte> key, ulong sequence, int length)
    {
        using var ctr = new AesCtr(key);
        var keystream = new byte[length];
        ctr.Keystream(sequence, keystream);
        return keystream;
    }

    /// <summary>
    /// Rents the array a call just returned for <paramref name="used"/> bytes: those bytes must be zeros, and in
    /// particular not <paramref name="secret"/>.
    /// </summary>
    private static void AssertPoolHoldsNoSecret(int used, byte[] secret)
    {
        var rented = ArrayPool<byte>.Shared.Rent(used);
        try
        {
            Assert.True(rented.AsSpan(0, used).IndexOf(secret.AsSpan(0, 32)) < 0, "the pooled buffer still holds keystream");
            Assert.True(rented.AsSpan(0, used).IndexOfAnyExcept((byte)0) < 0, "the pooled buffer was returned with data in it");
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }
}
