using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Overlay.Cells;

/// <summary>
/// One hop's entry of the forward MAC array: HMAC-SHA256(key, sequence || rest of the array ||
/// body), truncated to 16 bytes, over the cell exactly as that hop receives it.
/// </summary>
internal sealed class MacArrayKey : IDisposable
{
    private readonly IncrementalHash _hmac;

    public MacArrayKey(ReadOnlySpan<byte> key) => _hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, key);

    public void Compute(ulong sequence, ReadOnlySpan<byte> restOfArray, ReadOnlySpan<byte> body, Span<byte> mac)
    {
        Span<byte> prefix = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(prefix, sequence);
        _hmac.AppendData(prefix);
        _hmac.AppendData(restOfArray);
        _hmac.AppendData(body);
        Span<byte> full = stackalloc byte[32];
        _hmac.GetHashAndReset(full);
        full[..CellLayout.MacSize].CopyTo(mac);
    }

    /// <summary>Checks entry 0 of <paramref name="cell"/>'s array in constant time.</summary>
    public bool Verify(ulong sequence, ReadOnlySpan<byte> cell, int arrayLength)
    {
        Span<byte> expected = stackalloc byte[CellLayout.MacSize];
        Compute(sequence, cell[CellLayout.MacSize..arrayLength], cell[arrayLength..], expected);
        return CryptographicOperations.FixedTimeEquals(expected, cell[..CellLayout.MacSize]);
    }

    public void Dispose() => _hmac.Dispose();
}
