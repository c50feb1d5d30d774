using Overlay.Crypto;
using Overlay.Errors;
using Overlay.Protocol;

namespace Overlay.Cells;

/// <summary>
/// A relay's cell work for one tunnel: remove its layer from forward cells (after checking its
/// MAC-array entry with that construction), add its layer to backward cells, and seal its own
/// error cell. Each direction is driven by one pump, and a second caller entering a direction
/// while it is in use is refused; the two directions are independent.
/// </summary>
public sealed class RelayCellCodec : IDisposable
{
    private const string ForwardDirection = "relay's forward processing";
    private const string BackwardDirection = "relay's backward processing";

    private readonly CellLayout _layout;
    private readonly AesCtr _forward;
    private readonly AesCtr _backward;
    private readonly MacArrayKey? _mac;
    // Created once with the tunnel: its key schedule lives in native memory (CellAead), so no copy of
    // the key is left in a managed array the GC may move.
    private readonly CellAead _errorSeal;
    private ulong _forwardSequence;
    private ulong _backwardSequence;
    private int _forwardBusy;
    private int _backwardBusy;
    private int _disposed;

    internal RelayCellCodec(NetworkParameters parameters, HopKeys keys)
    {
        try
        {
            _layout = new CellLayout(parameters);
            _forward = new AesCtr(keys.ForwardLayer);
            _backward = new AesCtr(keys.BackwardLayer);
            _mac = parameters.Construction == CellConstruction.MacArray ? new MacArrayKey(keys.ForwardMac) : null;
            _errorSeal = new CellAead(keys.BackwardSeal);
        }
        finally
        {
            keys.Dispose();
        }
    }

    /// <summary>The cell layout.</summary>
    public CellLayout Layout => _layout;

    /// <summary>Forward cells processed so far.</summary>
    public ulong ForwardCells => _forwardSequence;

    /// <summary>Backward cells processed so far.</summary>
    public ulong BackwardCells => _backwardSequence;

    /// <summary>
    /// Removes this hop's layer from a forward cell in place. Returns <see cref="TunnelErrorKind.None"/>,
    /// or <see cref="TunnelErrorKind.Tampered"/> when this hop's MAC-array entry does not verify.
    /// </summary>
    public TunnelErrorKind ProcessForward(Span<byte> cell)
    {
        if (cell.Length != _layout.CellSize)
        {
            return TunnelErrorKind.Malformed;
        }

        SingleWriter.Enter(ref _forwardBusy, ForwardDirection);
        try
        {
            var sequence = _forwardSequence;
            if (_mac is not null)
            {
                var arrayLength = _layout.MacArrayLength;
                if (!_mac.Verify(sequence, cell, arrayLength))
                {
                    return TunnelErrorKind.Tampered;
                }

                // Shift the array left by one entry and let the keystream fill the freed last entry.
                cell[CellLayout.MacSize..arrayLength].CopyTo(cell);
                cell[(arrayLength - CellLayout.MacSize)..arrayLength].Clear();
            }

            _forward.Xor(sequence, cell);
            _forwardSequence = sequence + 1;
            return TunnelErrorKind.None;
        }
        finally
        {
            SingleWriter.Exit(ref _forwardBusy);
        }
    }

    /// <summary>Adds this hop's layer to a backward cell in place.</summary>
    public void ProcessBackward(Span<byte> cell)
    {
        if (cell.Length != _layout.CellSize)
        {
            throw new ArgumentException($"a cell is {_layout.CellSize} bytes", nameof(cell));
        }

        SingleWriter.Enter(ref _backwardBusy, BackwardDirection);
        try
        {
            _backward.Xor(_backwardSequence++, cell);
        }
        finally
        {
            SingleWriter.Exit(ref _backwardBusy);
        }
    }

    /// <summary>
    /// <see cref="ProcessForward(Span{byte})"/> for every cell of a link message (whole cells, in order),
    /// with one cipher call for the batch; on a failure the tunnel is over and nothing of the batch goes on.
    /// </summary>
    public TunnelErrorKind ProcessForwardCells(Span<byte> cells)
    {
        var cellSize = _layout.CellSize;
        if (cells.IsEmpty || cells.Length % cellSize != 0)
        {
            return TunnelErrorKind.Malformed;
        }

        SingleWriter.Enter(ref _forwardBusy, ForwardDirection);
        try
        {
            var first = _forwardSequence;
            if (_mac is not null)
            {
                var arrayLength = _layout.MacArrayLength;
                var sequence = first;
                for (var offset = 0; offset < cells.Length; offset += cellSize, sequence++)
                {
                    var cell = cells.Slice(offset, cellSize);
                    if (!_mac.Verify(sequence, cell, arrayLength))
                    {
                        return TunnelErrorKind.Tampered;
                    }

                    cell[CellLayout.MacSize..arrayLength].CopyTo(cell);
                    cell[(arrayLength - CellLayout.MacSize)..arrayLength].Clear();
                }
            }

            _forward.XorCells(first, cells, cellSize);
            _forwardSequence = first + (ulong)(cells.Length / cellSize);
            return TunnelErrorKind.None;
        }
        finally
        {
            SingleWriter.Exit(ref _forwardBusy);
        }
    }

    /// <summary><see cref="ProcessBackward(Span{byte})"/> for every cell of a link message (whole cells, in order), with one cipher call.</summary>
    public void ProcessBackwardCells(Span<byte> cells)
    {
        var cellSize = _layout.CellSize;
        if (cells.IsEmpty || cells.Length % cellSize != 0)
        {
            throw new ArgumentException($"whole cells of {cellSize} bytes", nameof(cells));
        }

        SingleWriter.Enter(ref _backwardBusy, BackwardDirection);
        try
        {
            _backward.XorCells(_backwardSequence, cells, cellSize);
            _backwardSequence += (ulong)(cells.Length / cellSize);
        }
        finally
        {
            SingleWriter.Exit(ref _backwardBusy);
        }
    }

    /// <summary>
    /// Writes this hop's backward error cell, which only the origin can open and attribute to this
    /// hop, or, with <paramref name="nextHop"/>, to this hop's successor (unreachable, refused the header, dropped).
    /// </summary>
    public void WriteErrorCell(TunnelErrorKind kind, Span<byte> cell, bool nextHop = false)
    {
        // After Dispose the key state is freed: refuse before taking a sequence number.
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (cell.Length != _layout.CellSize)
        {
            throw new ArgumentException($"a cell is {_layout.CellSize} bytes", nameof(cell));
        }

        SingleWriter.Enter(ref _backwardBusy, BackwardDirection);
        try
        {
            CellSeal.SealError(_errorSeal, _backwardSequence++, kind, nextHop, cell);
        }
        finally
        {
            SingleWriter.Exit(ref _backwardBusy);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _forward.Dispose();
        _backward.Dispose();
        _mac?.Dispose();
        _errorSeal.Dispose();
    }
}
