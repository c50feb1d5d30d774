namespace Overlay.Tests.Support;

/// <summary>Bit-level helpers: bit i is bit (i % 8) of byte (i / 8), least significant first.</summary>
internal static class Bits
{
    public static void Flip(Span<byte> data, int bit) => data[bit / 8] ^= (byte)(1 << (bit % 8));

    public static byte[] Flipped(ReadOnlySpan<byte> data, int bit)
    {
        var copy = data.ToArray();
        Flip(copy, bit);
        return copy;
    }

    /// <summary><paramref name="count"/> distinct bit indexes in [<paramref name="fromByte"/>, <paramref name="toByte"/>) bytes.</summary>
    public static int[] Sample(Random random, int fromByte, int toByte, int count)
    {
        var first = fromByte * 8;
        var total = (toByte - fromByte) * 8;
        if (count >= total)
        {
            return Enumerable.Range(first, total).ToArray();
        }

        var chosen = new HashSet<int>();
        while (chosen.Count < count)
        {
            chosen.Add(first + random.Next(total));
        }

        return chosen.Order().ToArray();
    }
}

/// <summary>X25519 u-coordinates that must never yield a usable shared secret.</summary>
internal static class X25519Points
{
    /// <summary>
    /// The points of small order (libsodium's list, top bit clear): 0, 1, the two points of order 8,
    /// and p - 1, p, p + 1 (p = 2^255 - 19), whose agreement result is all zeros.
    /// </summary>
    public static IReadOnlyList<byte[]> LowOrder { get; } =
    [
        Convert.FromHexString("0000000000000000000000000000000000000000000000000000000000000000"),
        Convert.FromHexString("0100000000000000000000000000000000000000000000000000000000000000"),
        Convert.FromHexString("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
        Convert.FromHexString("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
        Convert.FromHexString("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
        Convert.FromHexString("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
        Convert.FromHexString("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    ];

    /// <summary>The non-canonical encodings with the top bit clear: p .. 2^255 - 1 (little-endian).</summary>
    public static IEnumerable<byte[]> NonCanonical()
    {
        for (var low = 0xed; low <= 0xff; low++)
        {
            var u = new byte[32];
            u.AsSpan().Fill(0xff);
            u[0] = (byte)low;
            u[31] = 0x7f;
            yield return u;
        }
    }

    public static bool IsLowOrder(ReadOnlySpan<byte> u)
    {
        foreach (var point in LowOrder)
        {
            if (u.SequenceEqual(point))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>True for u >= p with the top bit clear.</summary>
    public static bool IsNonCanonical(ReadOnlySpan<byte> u) =>
        u[31] == 0x7f && u[1..31].IndexOfAnyExcept((byte)0xff) < 0 && u[0] >= 0xed;
}
