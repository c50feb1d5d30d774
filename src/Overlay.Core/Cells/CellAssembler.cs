namespace Overlay.Cells;

/// <summary>
/// Cuts a byte stream that arrives in arbitrary pieces into whole cells, holding at most one
/// partial cell. An empty read is never an end: only the authenticated End cell ends a message
/// (the origin project hung on exactly that confusion).
/// </summary>
public sealed class CellAssembler
{
    private readonly byte[] _partial;
    private int _filled;

    /// <summary>Creates an assembler for cells of <paramref name="cellSize"/> bytes.</summary>
    public CellAssembler(int cellSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(cellSize, 1);
        _partial = new byte[cellSize];
    }

    /// <summary>The cell size.</summary>
    public int CellSize => _partial.Length;

    /// <summary>Bytes of an incomplete cell held back; non-zero at the end of a stream means it was cut.</summary>
    public int PendingBytes => _filled;

    /// <summary>
    /// Takes bytes from the front of <paramref name="input"/> until a whole cell is available, then
    /// returns it in <paramref name="cell"/>: a slice of <paramref name="input"/> when the cell lies in
    /// it whole (no copy), otherwise the assembler's own buffer, valid until the next call.
    /// Returns false when <paramref name="input"/> ran out first.
    /// </summary>
    public bool TryNext(ref Span<byte> input, out Span<byte> cell)
    {
        var size = _partial.Length;
        if (_filled == 0 && input.Length >= size)
        {
            cell = input[..size];
            input = input[size..];
            return true;
        }

        var take = Math.Min(size - _filled, input.Length);
        input[..take].CopyTo(_partial.AsSpan(_filled));
        input = input[take..];
        _filled += take;
        if (_filled < size)
        {
            cell = default;
            return false;
        }

        _filled = 0;
        cell = _partial;
        return true;
    }
}
