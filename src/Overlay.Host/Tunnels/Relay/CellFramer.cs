using System.Buffers;

namespace Overlay.Host.Tunnels;

/// <summary>
/// How a relay frames the cells it passes on: by its own rule, never by how they arrived. Cells
/// already received when the relay writes leave in whole batches of <c>MaxCellsPerMessage</c> (the
/// last one shorter), so a predecessor that re-splits its messages into a pattern cannot make that
/// pattern reach the next hop; nothing waits for more input, so framing adds no delay. Timing (the
/// gaps between messages) is the channel that remains (docs/protocol.md §11).
/// </summary>
/// <remarks>
/// Holds the received arrays until they are written, at most one batch plus one message: a batch
/// that lies in one received message goes out as a slice of it, one that spans messages is copied
/// into a pooled buffer.
/// </remarks>
internal sealed class CellFramer(int maxBytes)
{
    private readonly List<ReadOnlyMemory<byte>> _chunks = new(4);
    private int _pending;

    /// <summary>Bytes of cells received and not yet taken.</summary>
    public int PendingBytes => _pending;

    /// <summary>Adds the (already processed) cells of one received message.</summary>
    public void Add(ReadOnlyMemory<byte> cells)
    {
        if (!cells.IsEmpty)
        {
            _chunks.Add(cells);
            _pending += cells.Length;
        }
    }

    /// <summary>
    /// The next outgoing message: a full batch, or with <paramref name="flush"/> whatever is pending
    /// (up to a batch). False when there is nothing to take under that rule.
    /// </summary>
    public bool TryTake(bool flush, out FramedBatch batch)
    {
        batch = default;
        if (_pending == 0 || (!flush && _pending < maxBytes))
        {
            return false;
        }

        var size = Math.Min(_pending, maxBytes);
        _pending -= size;
        var first = _chunks[0];
        if (first.Length >= size)
        {
            batch = new FramedBatch(first[..size], null);
            Consume(0, first, size);
            return true;
        }

        var rented = ArrayPool<byte>.Shared.Rent(size);
        var filled = 0;
        while (filled < size)
        {
            var chunk = _chunks[0];
            var take = Math.Min(chunk.Length, size - filled);
            chunk.Span[..take].CopyTo(rented.AsSpan(filled));
            filled += take;
            Consume(0, chunk, take);
        }

        batch = new FramedBatch(rented.AsMemory(0, size), rented);
        return true;
    }

    private void Consume(int index, ReadOnlyMemory<byte> chunk, int taken)
    {
        if (taken == chunk.Length)
        {
            _chunks.RemoveAt(index);
        }
        else
        {
            _chunks[index] = chunk[taken..];
        }
    }
}

/// <summary>One outgoing message of cells; <see cref="Release"/> it once the message was written.</summary>
internal readonly record struct FramedBatch(ReadOnlyMemory<byte> Cells, byte[]? Rented)
{
    public void Release()
    {
        if (Rented is not null)
        {
            ArrayPool<byte>.Shared.Return(Rented);
        }
    }
}
