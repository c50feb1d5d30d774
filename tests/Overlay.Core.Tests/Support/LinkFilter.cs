namespace Overlay.Tests.Support;

/// <summary>Which way cells travel: forward from the origin, backward to it.</summary>
public enum Direction
{
    Forward,
    Backward,
}

/// <summary>What actually goes onto a link, byte by byte.</summary>
internal interface ILinkWriter
{
    void Write(ReadOnlySpan<byte> bytes);
}

/// <summary>
/// An adversary (or a fault) on the links of an <see cref="InMemoryTunnel"/>. It sees every whole
/// cell a hop sends, before the cell is cut into chunks, and writes what really crosses the link.
/// A link is named by the hop that receives from it: forward 1..R+1, backward R..0 (0 = the origin).
/// </summary>
internal abstract class LinkFilter
{
    /// <summary>True once the filter changed what crossed a link; a test asserts it to stay honest.</summary>
    public bool Applied { get; protected set; }

    public abstract void OnCell(Direction direction, int receiver, long index, ReadOnlySpan<byte> cell, ILinkWriter wire);

    public virtual void OnClose(Direction direction, int receiver, ILinkWriter wire)
    {
    }

    /// <summary>Flips one bit of one cell.</summary>
    public static LinkFilter FlipBit(Direction direction, int receiver, long cell, int bit) =>
        new CellEditor(direction, receiver, cell, c => Bits.Flip(c, bit));

    /// <summary>Overwrites one cell with the result of <paramref name="edit"/>.</summary>
    public static LinkFilter Edit(Direction direction, int receiver, long cell, CellEdit edit) =>
        new CellEditor(direction, receiver, cell, edit);

    /// <summary>Sends cell <paramref name="cell"/> after cell <paramref name="cell"/> + 1.</summary>
    public static LinkFilter Swap(Direction direction, int receiver, long cell) => new Swapper(direction, receiver, cell);

    /// <summary>Sends cell <paramref name="cell"/> twice.</summary>
    public static LinkFilter Duplicate(Direction direction, int receiver, long cell) => new Duplicator(direction, receiver, cell);

    /// <summary>Loses cell <paramref name="cell"/>.</summary>
    public static LinkFilter Drop(Direction direction, int receiver, long cell) => new Dropper(direction, receiver, cell);

    /// <summary>Ends the link's stream after <paramref name="bytes"/> bytes (possibly mid-cell).</summary>
    public static LinkFilter CutAfter(Direction direction, int receiver, long bytes) => new Cutter(direction, receiver, bytes);

    /// <summary>Records a copy of every cell on every link, unchanged.</summary>
    public static CaptureAllFilter CaptureAll() => new();

    /// <summary>Records a copy of every cell on one link, unchanged.</summary>
    public static CaptureFilter Capture(Direction direction, int receiver) => new(direction, receiver);

    internal delegate void CellEdit(Span<byte> cell);

    /// <summary>Passes every cell except those on the one link it targets.</summary>
    internal abstract class OneLink(Direction direction, int receiver) : LinkFilter
    {
        public sealed override void OnCell(Direction d, int r, long index, ReadOnlySpan<byte> cell, ILinkWriter wire)
        {
            if (d == direction && r == receiver)
            {
                OnTarget(index, cell, wire);
            }
            else
            {
                wire.Write(cell);
            }
        }

        public sealed override void OnClose(Direction d, int r, ILinkWriter wire)
        {
            if (d == direction && r == receiver)
            {
                OnTargetClose(wire);
            }
        }

        protected abstract void OnTarget(long index, ReadOnlySpan<byte> cell, ILinkWriter wire);

        protected virtual void OnTargetClose(ILinkWriter wire)
        {
        }
    }

    private sealed class CellEditor(Direction direction, int receiver, long target, CellEdit edit) : OneLink(direction, receiver)
    {
        protected override void OnTarget(long index, ReadOnlySpan<byte> cell, ILinkWriter wire)
        {
            if (index != target)
            {
                wire.Write(cell);
                return;
            }

            var copy = cell.ToArray();
            edit(copy);
            Applied = true;
            wire.Write(copy);
        }
    }

    private sealed class Swapper(Direction direction, int receiver, long target) : OneLink(direction, receiver)
    {
        private byte[]? _held;

        protected override void OnTarget(long index, ReadOnlySpan<byte> cell, ILinkWriter wire)
        {
            if (index == target)
            {
                _held = cell.ToArray();
                return;
            }

            wire.Write(cell);
            if (index == target + 1 && _held is not null)
            {
                wire.Write(_held);
                _held = null;
                Applied = true;
            }
        }

        protected override void OnTargetClose(ILinkWriter wire)
        {
            if (_held is not null)
            {
                wire.Write(_held);
                _held = null;
            }
        }
    }

    private sealed class Duplicator(Direction direction, int receiver, long target) : OneLink(direction, receiver)
    {
        protected override void OnTarget(long index, ReadOnlySpan<byte> cell, ILinkWriter wire)
        {
            wire.Write(cell);
            if (index == target)
            {
                wire.Write(cell);
                Applied = true;
            }
        }
    }

    private sealed class Dropper(Direction direction, int receiver, long target) : OneLink(direction, receiver)
    {
        protected override void OnTarget(long index, ReadOnlySpan<byte> cell, ILinkWriter wire)
        {
            if (index == target)
            {
                Applied = true;
                return;
            }

            wire.Write(cell);
        }
    }

    private sealed class Cutter(Direction direction, int receiver, long limit) : OneLink(direction, receiver)
    {
        private long _written;

        protected override void OnTarget(long index, ReadOnlySpan<byte> cell, ILinkWriter wire)
        {
            var room = (int)Math.Clamp(limit - _written, 0, cell.Length);
            if (room < cell.Length)
            {
                Applied = true;
            }

            wire.Write(cell[..room]);
            _written += room;
        }
    }
}

/// <summary>Keeps a copy of every cell crossing one link.</summary>
internal sealed class CaptureFilter(Direction direction, int receiver) : LinkFilter.OneLink(direction, receiver)
{
    public List<byte[]> Cells { get; } = [];

    protected override void OnTarget(long index, ReadOnlySpan<byte> cell, ILinkWriter wire)
    {
        Cells.Add(cell.ToArray());
        wire.Write(cell);
    }
}

/// <summary>Keeps a copy of every cell crossing every link, by direction and receiving hop.</summary>
internal sealed class CaptureAllFilter : LinkFilter
{
    public Dictionary<(Direction Direction, int Receiver), List<byte[]>> Cells { get; } = [];

    public override void OnCell(Direction direction, int receiver, long index, ReadOnlySpan<byte> cell, ILinkWriter wire)
    {
        if (!Cells.TryGetValue((direction, receiver), out var list))
        {
            Cells[(direction, receiver)] = list = [];
        }

        list.Add(cell.ToArray());
        wire.Write(cell);
    }
}
