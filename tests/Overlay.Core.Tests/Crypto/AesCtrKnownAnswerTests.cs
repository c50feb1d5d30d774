using Overlay.Crypto;

namespace Overlay.Tests.Crypto;

/// <summary>
/// NIST SP 800-38A F.5.5 (CTR-AES256.Encrypt) through <see cref="AesCtr"/>. The example's initial
/// counter block <c>f0f1f2f3f4f5f6f7 f8f9fafbfcfdfeff</c> is, in the project's counter layout
/// (docs/protocol.md 5.1: <c>sequence (8 bytes) || block index (8 bytes)</c>, both big-endian),
/// sequence <c>0xf0f1f2f3f4f5f6f7</c> from block <c>0xf8f9fafbfcfdfeff</c>; its four blocks count
/// up in the low bytes only (<c>..feff</c>, <c>..ff00</c>, <c>..ff01</c>, <c>..ff02</c>, the second a
/// carry across bytes), so the vector checks the block cipher, the byte order of both halves and
/// the increment together. A counter layout in the wrong order or endianness fails it.
/// </summary>
public sealed class AesCtrKnownAnswerTests
{
    private const string Key = "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4";
    private const ulong Sequence = 0xf0f1f2f3f4f5f6f7;
    private const ulong FirstBlock = 0xf8f9fafbfcfdfeff;

    private const string Plaintext =
        "6bc1bee22e409f96e93d7e117393172a" + "ae2d8a571e03ac9c9eb76fac45af8e51" +
        "30c81c46a35ce411e5fbc1191a0a52ef" + "f69f2445df4f9b17ad2b417be66c3710";

    private const string Ciphertext =
        "601ec313775789a5b7a7f504bbf3d228" + "f443e3ca4d62b59aca84e990cacaf5c5" +
        "2b0930daa23de94ce87017ba2d84988d" + "dfc9c58db67aada613c2dd08457941a6";

    [Fact]
    public void Encrypts_the_sp_800_38a_f_5_5_example()
    {
        using var ctr = new AesCtr(Convert.FromHexString(Key));
        var data = Convert.FromHexString(Plaintext);
        ctr.Xor(Sequence, data, FirstBlock);
        Assert.Equal(Ciphertext, Convert.ToHexStringLower(data));

        // F.5.6, the decryption direction, is the same operation.
        ctr.Xor(Sequence, data, FirstBlock);
        Assert.Equal(Plaintext, Convert.ToHexStringLower(data));
    }

    [Fact]
    public void Each_block_of_the_example_is_reached_by_its_own_block_index()
    {
        using var ctr = new AesCtr(Convert.FromHexString(Key));
        var plaintext = Convert.FromHexString(Plaintext);
        var ciphertext = Convert.FromHexString(Ciphertext);
        for (var block = 0; block < 4; block++)
        {
            var data = plaintext.AsSpan(block * 16, 16).ToArray();
            ctr.Xor(Sequence, data, FirstBlock + (ulong)block);
            Assert.Equal(ciphertext.AsSpan(block * 16, 16).ToArray(), data);
        }
    }

    [Fact]
    public void The_keystream_is_the_example_s_output_blocks()
    {
        using var ctr = new AesCtr(Convert.FromHexString(Key));
        var keystream = new byte[64];
        ctr.Keystream(Sequence, keystream, FirstBlock);
        var expected = Convert.FromHexString(Plaintext);
        ByteOps.Xor(expected, Convert.FromHexString(Ciphertext));
        Assert.Equal(expected, keystream);
    }

    [Fact]
    public void A_partial_block_takes_the_prefix_of_the_keystream()
    {
        using var ctr = new AesCtr(Convert.FromHexString(Key));
        var data = Convert.FromHexString(Plaintext)[..37];
        ctr.Xor(Sequence, data, FirstBlock);
        Assert.Equal(Ciphertext[..74], Convert.ToHexStringLower(data));
    }

    [Fact]
    public void Batched_cells_use_one_sequence_per_cell_from_block_zero()
    {
        // XorCells(first, cells) must equal Xor(first + i, cell i): checked against the example by
        // placing its counter at the start of the second of two 64-byte cells.
        using var ctr = new AesCtr(Convert.FromHexString(Key));
        var cells = new byte[128];
        ctr.XorCells(Sequence - 1, cells, 64);
        var single = new byte[64];
        ctr.Keystream(Sequence, single);
        Assert.Equal(single, cells[64..]);
        var previous = new byte[64];
        ctr.Keystream(Sequence - 1, previous);
        Assert.Equal(previous, cells[..64]);
    }
}
