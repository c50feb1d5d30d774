using Overlay.Crypto;

namespace Overlay.Replies;

/// <summary>
/// The relay layers of a reply route, applied by the block's maker where it receives the reply
/// (docs/protocol.md §7.8). The replier holds no relay keys, so it sends bare end-to-end cells and
/// every relay adds its forward layer: the maker removes them all before opening. Backward, the
/// maker puts every relay's backward layer on in advance, so the replier receives the bare sealed cell.
/// Counter-mode layers are XORs, so their order does not matter.
/// </summary>
internal sealed class ReplyRouteLayers : IDisposable
{
    private readonly AesCtr[] _forward;
    private readonly AesCtr[] _backward;

    public ReplyRouteLayers(AesCtr[] forward, AesCtr[] backward)
    {
        _forward = forward;
        _backward = backward;
    }

    /// <summary>Removes every relay's forward layer of cell <paramref name="sequence"/>.</summary>
    public void RemoveForward(ulong sequence, Span<byte> cell)
    {
        foreach (var layer in _forward)
        {
            layer.Xor(sequence, cell);
        }
    }

    /// <summary>Puts on, in advance, every relay's backward layer of cell <paramref name="sequence"/>: each relay's own XOR then takes it off.</summary>
    public void CancelBackward(ulong sequence, Span<byte> cell)
    {
        foreach (var layer in _backward)
        {
            layer.Xor(sequence, cell);
        }
    }

    public void Dispose()
    {
        // A partly built set (a failed build) has null entries.
        foreach (var layer in _forward)
        {
            layer?.Dispose();
        }

        foreach (var layer in _backward)
        {
            layer?.Dispose();
        }
    }
}
