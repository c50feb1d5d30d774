using System.Buffers;
using System.Security.Cryptography;
using Overlay.Crypto;
using Overlay.Errors;
using Overlay.Onion;
using Overlay.Protocol;

namespace Overlay.Cells;

/// <summary>
/// The origin's cell work for one tunnel: seal forward cells for the destination and wrap them in
/// every relay's layer (and, with the MAC-array construction, build each hop's MAC entry), and
/// peel backward cells, checking the destination's key first and each hop's key only when that
/// fails, which is how the origin learns which hop sent an error.
/// </summary>
public sealed class OriginCellCodec : IDisposable
{
    private const string ForwardDirection = "origin's forward sealing";
    private const string BackwardDirection = "origin's backward opening";

    private readonly CellLayout _layout;
    private readonly OriginTunnelKeys _keys;
    private readonly AesCtr[] _forwardLayers;
    private readonly AesCtr[] _backwardLayers;
    private readonly MacArrayKey[]? _macs;
    private readonly AesCtr? _padding;
    private readonly CellAead _forwardSeal;
    private readonly CellAead _backwardSeal;
    private readonly CellSealer _sealForwardCell;
    private ulong _forwardSequence;
    private ulong _backwardSequence;
    private int _forwardBusy;
    private int _backwardBusy;
    private int _disposed;

    /// <summary>Creates the codec; it takes ownership of <paramref name="keys"/>.</summary>
    public OriginCellCodec(NetworkParameters parameters, OriginTunnelKeys keys, IOnionRandom? random = null)
    {
        _layout = new CellLayout(parameters);
        _keys = keys;
        var relays = keys.RelayCount;
        var destination = keys.Hops[relays];
        _forwardLayers = new AesCtr[relays];
        _backwardLayers = new AesCtr[relays];
        for (var i = 0; i < relays; i++)
        {
            _forwardLayers[i] = new AesCtr(keys.Hops[i].ForwardLayer);
            _backwardLayers[i] = new AesCtr(keys.Hops[i].BackwardLayer);
        }

        _forwardSeal = new CellAead(destination.ForwardSeal);
        _backwardSeal = new CellAead(destination.BackwardSeal);
        // The MAC array needs every layer's keystream of each cell: those are sealed one cell at a time.
        _sealForwardCell = parameters.Construction == CellConstruction.MacArray ? SealForwardCell : SealInnerCell;
        if (parameters.Construction == CellConstruction.MacArray)
        {
            _macs = new MacArrayKey[relays + 1];
            for (var i = 0; i <= relays; i++)
            {
                _macs[i] = new MacArrayKey(keys.Hops[i].ForwardMac);
            }

            // Unused MAC entries are filled from a private stream so the destination cannot count hops.
            Span<byte> paddingKey = stackalloc byte[AesCtr.KeySize];
            (random ?? SystemOnionRandom.Instance).Fill(paddingKey);
            _padding = new AesCtr(paddingKey);
            CryptographicOperations.ZeroMemory(paddingKey);
        }
    }

    /// <summary>The cell layout.</summary>
    public CellLayout Layout => _layout;

    /// <summary>Number of relays.</summary>
    public int RelayCount => _forwardLayers.Length;

    /// <summary>Payload bytes per forward cell.</summary>
    public int ForwardPayloadCapacity => _layout.ForwardPayloadCapacity;

    /// <summary>Forward cells sealed so far.</summary>
    public ulong ForwardCells => _forwardSequence;

    /// <summary>Seals one forward cell (Data, End, or an Error such as Cancelled) into <paramref name="cell"/>.</summary>
    public void SealForward(CellType type, ReadOnlySpan<byte> payload, Span<byte> cell)
    {
        SingleWriter.Enter(ref _forwardBusy, ForwardDirection);
        try
        {
            SealForwardCell(type, payload, cell);
        }
        finally
        {
            SingleWriter.Exit(ref _forwardBusy);
        }
    }

    private void SealForwardCell(CellType type, ReadOnlySpan<byte> payload, Span<byte> cell)
    {
        if (cell.Length != _layout.CellSize)
        {
            throw new ArgumentException($"a cell is {_layout.CellSize} bytes", nameof(cell));
        }

        // Refuse before taking a sequence number: a gap would put the tunnel out of step for good.
        if (payload.Length > _layout.ForwardPayloadCapacity)
        {
            throw new ArgumentException($"a forward cell carries at most {_layout.ForwardPayloadCapacity} payload bytes", nameof(payload));
        }

        var sequence = _forwardSequence++;
        var arrayLength = _layout.MacArrayLength;
        CellSeal.Seal(_forwardSeal, sequence, type, payload, cell[arrayLength..]);
        if (_macs is null)
        {
            // Baseline: the layers are XORs of independent keystreams, so their order does not matter.
            foreach (var layer in _forwardLayers)
            {
                layer.Xor(sequence, cell);
            }

            return;
        }

        BuildMacArray(sequence, cell);
    }

    /// <summary>
    /// Seals the cells of one link message: <paramref name="data"/> is cut into payloads of
    /// <see cref="ForwardPayloadCapacity"/>, one per cell of <paramref name="cells"/> (whole cells), the last
    /// cell an End marker when <paramref name="final"/> and all of the data fits. Each relay's layer is then
    /// applied to the whole batch in one cipher call. Returns how many bytes of data were sealed.
    /// </summary>
    public int SealForwardCells(ReadOnlySpan<byte> data, bool final, Span<byte> cells)
    {
        SingleWriter.Enter(ref _forwardBusy, ForwardDirection);
        try
        {
            var first = _forwardSequence;
            var consumed = _layout.SealEach(data, final, _layout.ForwardPayloadCapacity, cells, _sealForwardCell);
            if (_macs is null)
            {
                foreach (var layer in _forwardLayers)
                {
                    layer.XorCells(first, cells, _layout.CellSize);
                }
            }

            return consumed;
        }
        finally
        {
            SingleWriter.Exit(ref _forwardBusy);
        }
    }

    // Baseline: only the end-to-end seal here, the layers go on the whole batch.
    private void SealInnerCell(CellType type, ReadOnlySpan<byte> payload, Span<byte> cell) =>
        CellSeal.Seal(_forwardSeal, _forwardSequence++, type, payload, cell);

    /// <summary>Seals a forward error cell (the origin tells the destination it gave up, e.g. Cancelled).</summary>
    public void WriteErrorCell(TunnelErrorKind kind, Span<byte> cell)
    {
        ReadOnlySpan<byte> reason = [(byte)kind, CellSeal.ErrorAtThisHop];
        SealForward(CellType.Error, reason, cell);
    }

    // Like the header's routing block, one hop at a time from the destination back to the first
    // relay: relay i receives [mac_i | rest_i] and turns it into (rest_i || 0^16) XOR keystream_i.
    private void BuildMacArray(ulong sequence, Span<byte> cell)
    {
        const int E = CellLayout.MacSize;
        var relays = _forwardLayers.Length;
        var entries = _layout.MacEntries;
        var arrayLength = _layout.MacArrayLength;
        var cellSize = _layout.CellSize;
        var array = cell[..arrayLength];
        var body = cell[arrayLength..];

        var streamsLength = Math.Max(1, relays * cellSize);
        var streams = ArrayPool<byte>.Shared.Rent(streamsLength);
        try
        {
            for (var i = 0; i < relays; i++)
            {
                _forwardLayers[i].Keystream(sequence, streams.AsSpan(i * cellSize, cellSize));
            }

            // Destination's view: [mac | padding (entries - relays - 1) | filler (relays entries)].
            var fillerStart = (entries - relays) * E;
            var filler = array[fillerStart..];
            filler.Clear();
            for (var i = 0; i < relays; i++)
            {
                ByteOps.Xor(filler[..((i + 1) * E)], streams.AsSpan((i * cellSize) + ((entries - i - 1) * E), (i + 1) * E));
            }

            var padding = array[E..fillerStart];
            _padding!.Keystream(sequence, padding);
            _macs![relays].Compute(sequence, array[E..], body, array[..E]);

            for (var i = relays - 1; i >= 0; i--)
            {
                var stream = streams.AsSpan(i * cellSize, cellSize);
                ByteOps.Xor(body, stream[arrayLength..]);
                array[..(arrayLength - E)].CopyTo(array[E..]);
                ByteOps.Xor(array[E..], stream[..(arrayLength - E)]);
                _macs[i].Compute(sequence, array[E..], body, array[..E]);
            }
        }
        finally
        {
            // Every relay's keystream of this cell: cleared before the buffer goes back to the shared pool.
            CryptographicOperations.ZeroMemory(streams.AsSpan(0, streamsLength));
            ArrayPool<byte>.Shared.Return(streams);
        }
    }

    /// <summary>
    /// Removes every relay's layer from a backward cell and opens it into <paramref name="plaintext"/>
    /// (at least <see cref="CellLayout.PlaintextBufferSize"/> bytes). An error cell names the hop
    /// whose key authenticated it; a cell no key opens is <see cref="TunnelErrorKind.Tampered"/>.
    /// </summary>
    public OpenedCell OpenBackward(Span<byte> cell, Span<byte> plaintext)
    {
        if (cell.Length != _layout.CellSize)
        {
            return OpenedCell.Failure(TunnelErrorKind.Malformed);
        }

        SingleWriter.Enter(ref _backwardBusy, BackwardDirection);
        try
        {
            foreach (var layer in _backwardLayers)
            {
                layer.Xor(_backwardSequence, cell);
            }

            return OpenPeeledCell(cell, plaintext);
        }
        finally
        {
            SingleWriter.Exit(ref _backwardBusy);
        }
    }

    /// <summary>
    /// Removes every relay's layer from the next backward cells at once (whole cells of one link message,
    /// one cipher call per relay). Each of them must then be opened, in order, with <see cref="OpenPeeledBackward"/>.
    /// </summary>
    public void PeelBackwardCells(Span<byte> cells)
    {
        var cellSize = _layout.CellSize;
        if (cells.Length % cellSize != 0)
        {
            throw new ArgumentException($"whole cells of {cellSize} bytes", nameof(cells));
        }

        SingleWriter.Enter(ref _backwardBusy, BackwardDirection);
        try
        {
            foreach (var layer in _backwardLayers)
            {
                layer.XorCells(_backwardSequence, cells, cellSize);
            }
        }
        finally
        {
            SingleWriter.Exit(ref _backwardBusy);
        }
    }

    /// <summary><see cref="OpenBackward"/> for a cell whose relay layers <see cref="PeelBackwardCells"/> already removed.</summary>
    public OpenedCell OpenPeeledBackward(Span<byte> cell, Span<byte> plaintext)
    {
        if (cell.Length != _layout.CellSize)
        {
            return OpenedCell.Failure(TunnelErrorKind.Malformed);
        }

        SingleWriter.Enter(ref _backwardBusy, BackwardDirection);
        try
        {
            return OpenPeeledCell(cell, plaintext);
        }
        finally
        {
            SingleWriter.Exit(ref _backwardBusy);
        }
    }

    private OpenedCell OpenPeeledCell(Span<byte> cell, Span<byte> plaintext)
    {
        var sequence = _backwardSequence;
        var relays = _backwardLayers.Length;
        if (CellSeal.TryOpen(_backwardSeal, sequence, cell, plaintext))
        {
            _backwardSequence = sequence + 1;
            var fromDestination = CellSeal.Parse(plaintext[.._layout.PlaintextBufferSize], hop: relays + 1);
            // The destination has no next hop to blame.
            return fromDestination.Hop > relays + 1 ? OpenedCell.Failure(TunnelErrorKind.ProtocolViolation, relays + 1) : fromDestination;
        }

        // Not the destination's: a relay's error cell carries no layer of its own, so put the
        // layers back one at a time from the last relay and try that relay's key.
        for (var i = relays - 1; i >= 0; i--)
        {
            _backwardLayers[i].Xor(sequence, cell);
            using var gcm = new CellAead(_keys.Hops[i].BackwardSeal);
            if (CellSeal.TryOpen(gcm, sequence, cell, plaintext))
            {
                _backwardSequence = sequence + 1;
                var opened = CellSeal.Parse(plaintext[.._layout.PlaintextBufferSize], hop: i + 1);
                // Only the destination sends data; a relay can only report an error.
                return opened.IsError ? opened : OpenedCell.Failure(TunnelErrorKind.ProtocolViolation, i + 1);
            }
        }

        return OpenedCell.Failure(TunnelErrorKind.Tampered);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        foreach (var layer in _forwardLayers)
        {
            layer.Dispose();
        }

        foreach (var layer in _backwardLayers)
        {
            layer.Dispose();
        }

        if (_macs is not null)
        {
            foreach (var mac in _macs)
            {
                mac.Dispose();
            }
        }

        _padding?.Dispose();
        _forwardSeal.Dispose();
        _backwardSeal.Dispose();
        _keys.Dispose();
    }
}
