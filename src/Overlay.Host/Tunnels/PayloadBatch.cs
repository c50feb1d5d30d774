using System.Buffers;

namespace Overlay.Host.Tunnels;

/// <summary>Seals the cells of one link message for a direction (origin forward, destination backward); returns the data bytes taken.</summary>
internal delegate int BatchSealer(ReadOnlySpan<byte> data, bool final, Span<byte> cells);

/// <summary>
/// Cuts payload bytes into at most one link message of sealed cells, in a pooled buffer. The last
/// cell carries the end marker when the message is final and the data fits.
/// </summary>
internal readonly struct PayloadBatch
{
    private PayloadBatch(byte[] buffer, int length, int consumed)
    {
        Buffer = buffer;
        Length = length;
        Consumed = consumed;
    }

    /// <summary>The pooled buffer; return it once the message is written.</summary>
    public byte[] Buffer { get; }

    /// <summary>Bytes of cells in <see cref="Buffer"/>.</summary>
    public int Length { get; }

    /// <summary>Payload bytes taken from the data.</summary>
    public int Consumed { get; }

    public ReadOnlyMemory<byte> Cells => Buffer.AsMemory(0, Length);

    public static PayloadBatch Seal(ReadOnlySpan<byte> data, bool final, int capacity, int cellSize, int maxCells, BatchSealer seal)
    {
        var cells = Math.Clamp((data.Length + capacity - 1) / capacity, 1, maxCells);
        var length = cells * cellSize;
        var buffer = ArrayPool<byte>.Shared.Rent(length);
        var consumed = seal(data, final, buffer.AsSpan(0, length));
        return new PayloadBatch(buffer, length, consumed);
    }

    /// <summary>Returns the buffer; call only after the message holding it was written.</summary>
    public void Release() => ArrayPool<byte>.Shared.Return(Buffer);
}
