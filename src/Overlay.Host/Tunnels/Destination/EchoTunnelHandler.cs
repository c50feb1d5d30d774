using System.Buffers;

namespace Overlay.Host.Tunnels;

/// <summary>
/// Streams every request byte straight back, so the reply starts before the request ends. It
/// waits for data holding no buffer and rents one per read, so an idle tunnel costs no buffer.
/// </summary>
public sealed class EchoTunnelHandler : ITunnelHandler
{
    /// <inheritdoc />
    public async Task HandleAsync(IncomingTunnel tunnel, CancellationToken cancellationToken)
    {
        var size = tunnel.ReplyChunkSize;
        while (await tunnel.WaitToReadAsync(cancellationToken))
        {
            var buffer = ArrayPool<byte>.Shared.Rent(size);
            var read = await tunnel.ReadAsync(buffer.AsMemory(0, size), cancellationToken);
            if (tunnel.Mode == Onion.TunnelMode.Duplex)
            {
                // The request already ended: the last bytes and the reply's end go in one message.
                await tunnel.WriteAsync(buffer.AsMemory(0, read), final: tunnel.RequestFullyRead, cancellationToken);
            }

            // Sealed into cells before the write returns; after a failed write the buffer is left to the GC.
            ArrayPool<byte>.Shared.Return(buffer);
        }

        if (tunnel.Mode == Onion.TunnelMode.Duplex && !tunnel.ReplyEnded)
        {
            await tunnel.CompleteAsync(cancellationToken);
        }
    }
}
