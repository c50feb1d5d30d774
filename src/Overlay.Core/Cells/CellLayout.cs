using Overlay.Errors;
using Overlay.Protocol;

namespace Overlay.Cells;

/// <summary>Seals one cell of a direction with the next sequence number.</summary>
internal delegate void CellSealer(CellType type, ReadOnlySpan<byte> payload, Span<byte> cell);

/// <summary>What a cell carries, inside the end-to-end encryption.</summary>
public enum CellType : byte
{
    /// <summary>Payload bytes; more follow.</summary>
    Data = 1,

    /// <summary>The authenticated end of this direction's message, possibly with its last payload bytes.</summary>
    End = 2,

    /// <summary>A typed error from the hop whose key seals the cell; the tunnel ends.</summary>
    Error = 3,

    /// <summary>
    /// Nothing: keeps a quiet tunnel alive past the hops' idle timeout. Inside the end-to-end
    /// encryption, so on the wire it is a cell like any other; the receiver discards it.
    /// </summary>
    Padding = 4,

    /// <summary>
    /// Backward only, from the destination of a one-way tunnel after the request's end: the number
    /// of forward cells it accepted (uint64, big-endian), sealed with its key, so the origin knows the
    /// message was delivered rather than dropped by a relay.
    /// </summary>
    Receipt = 5,
}

/// <summary>
/// Sizes inside a cell for one network (docs/protocol.md, "Cells"). Every cell on the wire is
/// <see cref="CellSize"/> bytes. A forward cell with the MAC-array construction starts with
/// (MaxRelays + 1) 16-byte MACs; the rest is the body. The innermost body is AES-256-GCM:
/// <code>
///  body:      +--------------------------------------------+----------+
///             | ciphertext of the inner plaintext           | GCM tag  |
///             +--------------------------------------------+----------+
///  plaintext: | type (1) | length (2, BE) | payload | zero padding      |
/// </code>
/// </summary>
public sealed class CellLayout
{
    /// <summary>AES-GCM tag size.</summary>
    public const int TagSize = 16;

    /// <summary>Size of one MAC-array entry.</summary>
    public const int MacSize = 16;

    /// <summary>Type and length in front of the payload.</summary>
    public const int InnerHeaderSize = 3;

    /// <summary>Computes the layout; <paramref name="validate"/> false is for the parameters' own validation.</summary>
    public CellLayout(NetworkParameters parameters, bool validate = true)
    {
        if (validate)
        {
            parameters.EnsureValid();
        }

        CellSize = parameters.CellSize;
        MacEntries = parameters.MaxRelays + 1;
        MacArrayLength = parameters.Construction == CellConstruction.MacArray ? MacEntries * MacSize : 0;
    }

    /// <summary>The size of every cell on the wire.</summary>
    public int CellSize { get; }

    /// <summary>Entries in the MAC array (MaxRelays + 1).</summary>
    public int MacEntries { get; }

    /// <summary>Bytes of MACs in front of a forward cell's body (0 for the baseline).</summary>
    public int MacArrayLength { get; }

    /// <summary>Bytes of a forward cell's body.</summary>
    public int ForwardBodyLength => CellSize - MacArrayLength;

    /// <summary>Payload bytes one forward cell carries.</summary>
    public int ForwardPayloadCapacity => ForwardBodyLength - TagSize - InnerHeaderSize;

    /// <summary>Payload bytes one backward cell carries.</summary>
    public int BackwardPayloadCapacity => CellSize - TagSize - InnerHeaderSize;

    /// <summary>The plaintext buffer size <c>Open*</c> methods need.</summary>
    public int PlaintextBufferSize => CellSize - TagSize;

    /// <summary>
    /// Cuts <paramref name="data"/> into payloads of <paramref name="capacity"/> bytes, one per cell of
    /// <paramref name="cells"/> (whole cells), and seals each with <paramref name="seal"/>; the last cell is
    /// an End marker when <paramref name="final"/> and all of the data fits. Returns the bytes of data taken.
    /// </summary>
    internal int SealEach(ReadOnlySpan<byte> data, bool final, int capacity, Span<byte> cells, CellSealer seal)
    {
        if (cells.IsEmpty || cells.Length % CellSize != 0)
        {
            throw new ArgumentException($"whole cells of {CellSize} bytes", nameof(cells));
        }

        var count = cells.Length / CellSize;
        var consumed = 0;
        for (var i = 0; i < count; i++)
        {
            var chunk = data[consumed..Math.Min(data.Length, consumed + capacity)];
            consumed += chunk.Length;
            var type = final && consumed == data.Length && i == count - 1 ? CellType.End : CellType.Data;
            seal(type, chunk, cells.Slice(i * CellSize, CellSize));
        }

        return consumed;
    }
}

/// <summary>A cell after the end-to-end layer was removed. The payload is in the caller's plaintext buffer at <see cref="PayloadOffset"/>.</summary>
/// <param name="Type">Data, End or Error.</param>
/// <param name="PayloadLength">Payload bytes (Data, End).</param>
/// <param name="Error">For <see cref="CellType.Error"/>: the reason, or why the cell itself was refused.</param>
/// <param name="Hop">For errors at the origin: which hop (1-based; R + 1 = destination; 0 = unknown).</param>
public readonly record struct OpenedCell(CellType Type, int PayloadLength, TunnelErrorKind Error, int Hop)
{
    /// <summary>Where the payload starts in the plaintext buffer.</summary>
    public const int PayloadOffset = CellLayout.InnerHeaderSize;

    /// <summary>The payload of a <see cref="CellType.Receipt"/>: the count of forward cells accepted.</summary>
    public const int ReceiptLength = 8;

    /// <summary>True for an error cell or a cell that could not be opened.</summary>
    public bool IsError => Type == CellType.Error;

    /// <summary>
    /// For errors at the origin: the hop whose key sealed the report (the failing hop is this one, or
    /// its successor when the report's self-declared scope says so).
    /// </summary>
    public int ReportedBy { get; init; }

    internal static OpenedCell Failure(TunnelErrorKind kind, int hop = 0) => new(CellType.Error, 0, kind, hop) { ReportedBy = hop };
}
