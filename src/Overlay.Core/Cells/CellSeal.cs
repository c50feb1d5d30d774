using System.Buffers.Binary;
using Overlay.Crypto;
using Overlay.Errors;

namespace Overlay.Cells;

/// <summary>
/// The end-to-end layer: AES-256-GCM with a 96-bit nonce of four zero bytes and the cell's
/// 64-bit sequence number (big-endian). Each key seals one direction of one tunnel, so
/// (key, nonce) never repeats; a reordered, dropped or duplicated cell fails to open.
/// </summary>
internal static class CellSeal
{
    public const int NonceSize = 12;

    public static void Seal(CellAead gcm, ulong sequence, CellType type, ReadOnlySpan<byte> payload, Span<byte> body)
    {
        var plain = body[..^CellLayout.TagSize];
        if (payload.Length > plain.Length - CellLayout.InnerHeaderSize)
        {
            throw new ArgumentException($"a cell carries at most {plain.Length - CellLayout.InnerHeaderSize} payload bytes", nameof(payload));
        }

        plain[0] = (byte)type;
        BinaryPrimitives.WriteUInt16BigEndian(plain[1..], (ushort)payload.Length);
        payload.CopyTo(plain[CellLayout.InnerHeaderSize..]);
        plain[(CellLayout.InnerHeaderSize + payload.Length)..].Clear();

        Span<byte> nonce = stackalloc byte[NonceSize];
        WriteNonce(nonce, sequence);
        gcm.Encrypt(nonce, plain, plain, body[^CellLayout.TagSize..]);
    }

    /// <summary>Seals an error cell: the reason, and whether the fault is this hop's or its link to the next hop.</summary>
    public static void SealError(CellAead gcm, ulong sequence, TunnelErrorKind kind, bool nextHop, Span<byte> body)
    {
        ReadOnlySpan<byte> reason = [(byte)kind, nextHop ? ErrorAtNextHop : ErrorAtThisHop];
        Seal(gcm, sequence, CellType.Error, reason, body);
    }

    public const byte ErrorAtThisHop = 0;
    public const byte ErrorAtNextHop = 1;

    /// <summary>Opens <paramref name="body"/> into <paramref name="plaintext"/>; false when the tag does not match.</summary>
    public static bool TryOpen(CellAead gcm, ulong sequence, ReadOnlySpan<byte> body, Span<byte> plaintext)
    {
        Span<byte> nonce = stackalloc byte[NonceSize];
        WriteNonce(nonce, sequence);
        var length = body.Length - CellLayout.TagSize;
        return gcm.TryDecrypt(nonce, body[..length], body[length..], plaintext[..length]);
    }

    public static OpenedCell Parse(ReadOnlySpan<byte> plaintext, int hop)
    {
        var type = (CellType)plaintext[0];
        var length = BinaryPrimitives.ReadUInt16BigEndian(plaintext[1..]);
        if (length > plaintext.Length - CellLayout.InnerHeaderSize)
        {
            return OpenedCell.Failure(TunnelErrorKind.ProtocolViolation, hop);
        }

        return type switch
        {
            CellType.Data or CellType.End => new OpenedCell(type, length, TunnelErrorKind.None, hop),
            CellType.Padding when length == 0 => new OpenedCell(type, 0, TunnelErrorKind.None, hop),
            CellType.Receipt when length == OpenedCell.ReceiptLength => new OpenedCell(type, length, TunnelErrorKind.None, hop),
            CellType.Error when length == 2 && plaintext[CellLayout.InnerHeaderSize + 1] <= ErrorAtNextHop =>
                OpenedCell.Failure(TunnelErrorKinds.FromWire(plaintext[CellLayout.InnerHeaderSize]), hop + plaintext[CellLayout.InnerHeaderSize + 1]) with { ReportedBy = hop },
            _ => OpenedCell.Failure(TunnelErrorKind.ProtocolViolation, hop),
        };
    }

    private static void WriteNonce(Span<byte> nonce, ulong sequence)
    {
        nonce[..4].Clear();
        BinaryPrimitives.WriteUInt64BigEndian(nonce[4..], sequence);
    }
}
