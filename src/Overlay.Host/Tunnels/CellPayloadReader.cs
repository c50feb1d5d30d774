using System.Runtime.InteropServices;
using Overlay.Cells;

namespace Overlay.Host.Tunnels;

/// <summary>Opens one received cell into its plaintext (the origin's backward, or the destination's forward, codec).</summary>
internal delegate OpenedCell CellOpener(Span<byte> cell, Span<byte> plaintext);

/// <summary>
/// The receiving end of one direction: the cells of the link message being read, opened one at a
/// time, and the payload of the last one opened. Both the origin and the destination read through
/// it; what a bad or final cell means is theirs to decide.
/// </summary>
internal sealed class CellPayloadReader
{
    private readonly int _cellSize;
    private readonly byte[] _plaintext;
    private ReadOnlyMemory<byte> _cells;
    private int _offset;
    private int _remaining;

    public CellPayloadReader(CellLayout layout, ReadOnlyMemory<byte> firstCells = default)
    {
        _cellSize = layout.CellSize;
        _plaintext = new byte[layout.PlaintextBufferSize];
        _cells = firstCells;
    }

    /// <summary>Payload of the opened cell not yet copied out.</summary>
    public bool HasPayload => _remaining > 0;

    /// <summary>Cells of the current message not yet opened.</summary>
    public bool HasCells => !_cells.IsEmpty;

    /// <summary>Takes the cells of a newly read message (a whole number of cells).</summary>
    public void Load(ReadOnlyMemory<byte> cells) => _cells = cells;

    /// <summary>Opens the next cell of the current message; its payload (if any) becomes readable.</summary>
    public OpenedCell OpenNext(CellOpener open)
    {
        // The message's array is ours alone (fresh from the parser): the codec works in place.
        var cell = MemoryMarshal.AsMemory(_cells[.._cellSize]).Span;
        // Once empty, drop the message's array (an empty slice would still hold it while the tunnel idles).
        _cells = _cells.Length > _cellSize ? _cells[_cellSize..] : default;
        var opened = open(cell, _plaintext);
        (_offset, _remaining) = opened.IsError ? (0, 0) : (OpenedCell.PayloadOffset, opened.PayloadLength);
        return opened;
    }

    /// <summary>The whole payload of the cell just opened, taken so no read returns it (a receipt's count).</summary>
    public ReadOnlySpan<byte> TakePayload()
    {
        var payload = _plaintext.AsSpan(_offset, _remaining);
        _remaining = 0;
        return payload;
    }

    /// <summary>
    /// Copies as much payload as <paramref name="buffer"/> holds from the cells already received,
    /// calling <paramref name="openNext"/> for each further cell of the current message; it returns
    /// false to stop (the end marker, or a failure it recorded). Never waits for the network.
    /// </summary>
    public int CopyTo(Span<byte> buffer, Func<bool> openNext)
    {
        var total = 0;
        while (true)
        {
            var count = Math.Min(buffer.Length - total, _remaining);
            _plaintext.AsSpan(_offset, count).CopyTo(buffer[total..]);
            _offset += count;
            _remaining -= count;
            total += count;
            if (total == buffer.Length || _remaining > 0 || _cells.IsEmpty || !openNext())
            {
                return total;
            }
        }
    }
}
