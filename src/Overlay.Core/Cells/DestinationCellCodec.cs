using Overlay.Crypto;
using Overlay.Errors;
using Overlay.Protocol;

namespace Overlay.Cells;

/// <summary>
/// The destination's cell work for one tunnel: open forward cells (checking its MAC-array entry
/// first with that construction) and seal backward cells, errors included. For a reply that came
/// over a reply block, the destination is the block's maker and also removes and cancels the reply
/// route's relay layers (docs/protocol.md §7.8).
/// </summary>
public sealed class DestinationCellCodec : IDisposable
{
    private const string ForwardDirection = "destination's forward opening";
    private const string BackwardDirection = "destination's backward sealing";

    private readonly CellLayout _layout;
    private readonly CellAead _forward;
    private readonly CellAead _backward;
    private readonly MacArrayKey? _mac;
    private readonly CellSealer _sealBackwardCell;
    private readonly Replies.ReplyRouteLayers? _replyRoute;
    private ulong _forwardSequence;
    private ulong _backwardSequence;
    private int _forwardBusy;
    private int _backwardBusy;
    private int _disposed;

    internal DestinationCellCodec(NetworkParameters parameters, HopKeys keys, Replies.ReplyRouteLayers? replyRoute = null)
    {
        try
        {
            _layout = new CellLayout(parameters);
            _replyRoute = replyRoute;
            _forward = new CellAead(keys.ForwardSeal);
            _backward = new CellAead(keys.BackwardSeal);
            _mac = parameters.Construction == CellConstruction.MacArray ? new MacArrayKey(keys.ForwardMac) : null;
            _sealBackwardCell = SealBackwardCell;
        }
        catch
        {
            replyRoute?.Dispose();
            throw;
        }
        finally
        {
            keys.Dispose();
        }
    }

    /// <summary>The cell layout.</summary>
    public CellLayout Layout => _layout;

    /// <summary>Payload bytes per backward cell.</summary>
    public int BackwardPayloadCapacity => _layout.BackwardPayloadCapacity;

    /// <summary>Forward cells opened so far (what a receipt counts).</summary>
    public ulong ForwardCells => _forwardSequence;

    /// <summary>
    /// Opens a forward cell into <paramref name="plaintext"/> (at least <see cref="CellLayout.PlaintextBufferSize"/>
    /// bytes). A cell that fails authentication comes back as an error of kind <see cref="TunnelErrorKind.Tampered"/>.
    /// </summary>
    public OpenedCell OpenForward(ReadOnlySpan<byte> cell, Span<byte> plaintext)
    {
        if (cell.Length != _layout.CellSize)
        {
            return OpenedCell.Failure(TunnelErrorKind.Malformed);
        }

        // Forward cells arrive read-only: a reply route's layers come off in a pooled copy (ciphertext, never plaintext).
        var stripped = _replyRoute is null ? null : System.Buffers.ArrayPool<byte>.Shared.Rent(cell.Length);
        SingleWriter.Enter(ref _forwardBusy, ForwardDirection);
        try
        {
            var sequence = _forwardSequence;
            if (stripped is not null)
            {
                cell.CopyTo(stripped);
                cell = stripped.AsSpan(0, cell.Length);
                _replyRoute!.RemoveForward(sequence, stripped.AsSpan(0, cell.Length));
            }

            var arrayLength = _layout.MacArrayLength;
            if (_mac is not null && !_mac.Verify(sequence, cell, arrayLength))
            {
                return OpenedCell.Failure(TunnelErrorKind.Tampered);
            }

            if (!CellSeal.TryOpen(_forward, sequence, cell[arrayLength..], plaintext))
            {
                return OpenedCell.Failure(TunnelErrorKind.Tampered);
            }

            _forwardSequence = sequence + 1;
        }
        finally
        {
            SingleWriter.Exit(ref _forwardBusy);
            if (stripped is not null)
            {
                System.Buffers.ArrayPool<byte>.Shared.Return(stripped);
            }
        }

        var opened = CellSeal.Parse(plaintext[..(_layout.ForwardBodyLength - CellLayout.TagSize)], hop: 0);
        // Receipts travel backward only; the origin's error reports only itself.
        return (opened.IsError && opened.Hop != 0) || opened.Type == CellType.Receipt ? OpenedCell.Failure(TunnelErrorKind.ProtocolViolation) : opened;
    }

    /// <summary>Seals a backward Data, End or Padding cell.</summary>
    public void SealBackward(CellType type, ReadOnlySpan<byte> payload, Span<byte> cell)
    {
        SingleWriter.Enter(ref _backwardBusy, BackwardDirection);
        try
        {
            SealBackwardCell(type, payload, cell);
        }
        finally
        {
            SingleWriter.Exit(ref _backwardBusy);
        }
    }

    private void SealBackwardCell(CellType type, ReadOnlySpan<byte> payload, Span<byte> cell)
    {
        if (type is not (CellType.Data or CellType.End or CellType.Padding) || (type == CellType.Padding && !payload.IsEmpty))
        {
            throw new ArgumentOutOfRangeException(nameof(type), "Data, End or an empty Padding cell; use WriteErrorCell and WriteReceipt for the others");
        }

        CheckSize(cell);
        // Refuse before taking a sequence number: a gap would put the tunnel out of step for good.
        if (payload.Length > _layout.BackwardPayloadCapacity)
        {
            throw new ArgumentException($"a backward cell carries at most {_layout.BackwardPayloadCapacity} payload bytes", nameof(payload));
        }

        var sequence = _backwardSequence++;
        CellSeal.Seal(_backward, sequence, type, payload, cell);
        _replyRoute?.CancelBackward(sequence, cell);
    }

    /// <summary>
    /// Seals the cells of one link message: <paramref name="data"/> is cut into payloads of
    /// <see cref="BackwardPayloadCapacity"/>, one per cell of <paramref name="cells"/> (whole cells), the last
    /// cell an End marker when <paramref name="final"/> and all of the data fits. Returns how many bytes of data were sealed.
    /// </summary>
    public int SealBackwardCells(ReadOnlySpan<byte> data, bool final, Span<byte> cells)
    {
        SingleWriter.Enter(ref _backwardBusy, BackwardDirection);
        try
        {
            return _layout.SealEach(data, final, _layout.BackwardPayloadCapacity, cells, _sealBackwardCell);
        }
        finally
        {
            SingleWriter.Exit(ref _backwardBusy);
        }
    }

    /// <summary>Seals the receipt of a one-way tunnel: the count of forward cells opened, End included.</summary>
    public void WriteReceipt(Span<byte> cell)
    {
        CheckSize(cell);
        Span<byte> count = stackalloc byte[OpenedCell.ReceiptLength];
        SingleWriter.Enter(ref _backwardBusy, BackwardDirection);
        try
        {
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(count, _forwardSequence);
            var sequence = _backwardSequence++;
            CellSeal.Seal(_backward, sequence, CellType.Receipt, count, cell);
            _replyRoute?.CancelBackward(sequence, cell);
        }
        finally
        {
            SingleWriter.Exit(ref _backwardBusy);
        }
    }

    /// <summary>Seals a backward error cell.</summary>
    public void WriteErrorCell(TunnelErrorKind kind, Span<byte> cell)
    {
        CheckSize(cell);
        SingleWriter.Enter(ref _backwardBusy, BackwardDirection);
        try
        {
            var sequence = _backwardSequence++;
            CellSeal.SealError(_backward, sequence, kind, nextHop: false, cell);
            _replyRoute?.CancelBackward(sequence, cell);
        }
        finally
        {
            SingleWriter.Exit(ref _backwardBusy);
        }
    }

    private void CheckSize(Span<byte> cell)
    {
        if (cell.Length != _layout.CellSize)
        {
            throw new ArgumentException($"a cell is {_layout.CellSize} bytes", nameof(cell));
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
        _replyRoute?.Dispose();
    }
}
