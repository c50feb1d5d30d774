using System.Runtime.InteropServices;
using Google.Protobuf;

namespace Overlay.Host.Tunnels;

/// <summary>Helpers for the cells of a link message.</summary>
internal static class CellBatch
{
    /// <summary>
    /// The cells of a message just read from a link, as writable memory. The message owns a fresh
    /// array from deserialisation that nothing else references, so the hop peels or adds its layer
    /// in place and forwards the same message: one copy per hop (the parser's), not two.
    /// </summary>
    public static Memory<byte> Writable(ByteString cells) => MemoryMarshal.AsMemory(cells.Memory);

    /// <summary>True when <paramref name="length"/> is a whole, non-zero number of cells.</summary>
    public static bool IsWhole(int length, int cellSize) => length > 0 && length % cellSize == 0;
}
