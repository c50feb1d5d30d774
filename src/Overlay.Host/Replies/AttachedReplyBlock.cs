using System.Security.Cryptography;
using Overlay.Errors;
using Overlay.Host.Tunnels;
using Overlay.Protocol;
using Overlay.Replies;

namespace Overlay.Host.Replies;

/// <summary>
/// A reply block carried at the start of a one-way message whose header says so (docs/protocol.md §7.8):
/// end-to-end sealed like the rest of the message, so only the destination reads it.
/// </summary>
internal static class AttachedReplyBlock
{
    /// <summary>Writes <paramref name="block"/> as the first bytes of the message.</summary>
    public static async Task WriteAsync(OverlayTunnel tunnel, ReplyBlock block, CancellationToken cancellationToken)
    {
        // The block holds the holder's keys, not the maker's: it is meant for the destination, in this message only.
        var encoded = block.Encode();
        try
        {
            await tunnel.WriteAsync(encoded, final: false, cancellationToken);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(encoded);
        }
    }

    /// <summary>
    /// Reads the block from the start of the message: <see cref="TunnelErrorKind.Malformed"/> if the message ends
    /// first or the bytes are no block's start. Its expiry is the holder's to check when it replies.
    /// </summary>
    public static async Task<byte[]> ReadAsync(IncomingTunnel incoming, NetworkParameters network, CancellationToken cancellationToken)
    {
        var block = new byte[ReplyBlock.SizeFor(network)];
        var length = 0;
        while (length < block.Length)
        {
            var read = await incoming.ReadAsync(block.AsMemory(length), cancellationToken);
            if (read == 0)
            {
                throw new TunnelException(TunnelErrorKind.Malformed, 0, "the message ended inside the reply block its header announced");
            }

            length += read;
        }

        if (block[0] != ReplyBlock.FormatVersion)
        {
            throw new TunnelException(TunnelErrorKind.Malformed, 0, $"the attached reply block has format version {block[0]}, not {ReplyBlock.FormatVersion}");
        }

        return block;
    }
}
