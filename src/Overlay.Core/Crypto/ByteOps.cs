using System.Numerics;
using System.Runtime.InteropServices;

namespace Overlay.Crypto;

/// <summary>Vectorised byte operations for the hot path.</summary>
internal static class ByteOps
{
    /// <summary><paramref name="destination"/> ^= <paramref name="source"/> over destination's length.</summary>
    public static void Xor(Span<byte> destination, ReadOnlySpan<byte> source)
    {
        if (source.Length < destination.Length)
        {
            throw new ArgumentException("source shorter than destination", nameof(source));
        }

        var i = 0;
        if (Vector.IsHardwareAccelerated && destination.Length >= Vector<byte>.Count)
        {
            var vectors = destination.Length / Vector<byte>.Count;
            var d = MemoryMarshal.Cast<byte, Vector<byte>>(destination[..(vectors * Vector<byte>.Count)]);
            var s = MemoryMarshal.Cast<byte, Vector<byte>>(source[..(vectors * Vector<byte>.Count)]);
            for (var v = 0; v < d.Length; v++)
            {
                d[v] ^= s[v];
            }

            i = vectors * Vector<byte>.Count;
        }

        for (; i < destination.Length; i++)
        {
            destination[i] ^= source[i];
        }
    }
}
