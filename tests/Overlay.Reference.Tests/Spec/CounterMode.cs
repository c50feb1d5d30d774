using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Overlay.Reference.Spec;

/// <summary>
/// docs/protocol.md 5.1: AES-256-CTR whose 16-byte counter block for keystream block <c>j</c> of
/// sequence <c>q</c> is <c>q (8 bytes) || j (8 bytes)</c>, big-endian, built here from AES-ECB.
/// </summary>
internal static class CounterMode
{
    public static byte[] Keystream(byte[] key, ulong sequence, int length)
    {
        var blocks = (length + 15) / 16;
        var counters = new byte[blocks * 16];
        for (var j = 0; j < blocks; j++)
        {
            BinaryPrimitives.WriteUInt64BigEndian(counters.AsSpan(16 * j), sequence);
            BinaryPrimitives.WriteUInt64BigEndian(counters.AsSpan((16 * j) + 8), (ulong)j);
        }

        using var aes = Aes.Create();
        aes.Key = key;
        return aes.EncryptEcb(counters, PaddingMode.None)[..length];
    }

    /// <summary><paramref name="data"/> XOR the keystream of <paramref name="sequence"/>.</summary>
    public static byte[] Apply(byte[] key, ulong sequence, ReadOnlySpan<byte> data) =>
        Bytes.Xor(data, Keystream(key, sequence, data.Length));
}
