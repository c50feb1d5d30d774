namespace Overlay.Host.Tunnels;

/// <summary>
/// What a destination does with a tunnel that ends at this node (the origin project's "inner
/// service"). The default echoes; the control API lets applications register their own.
/// </summary>
public interface ITunnelHandler
{
    /// <summary>Reads the request from <paramref name="tunnel"/> and, for duplex tunnels, writes a reply.</summary>
    Task HandleAsync(IncomingTunnel tunnel, CancellationToken cancellationToken);
}

/// <summary>Streams every request byte straight back, so the reply starts before the request ends.</summary>
public sealed class EchoTunnelHandler : ITunnelHandler
{
    /// <inheritdoc />
    public async Task HandleAsync(IncomingTunnel tunnel, CancellationToken cancellationToken)
    {
        var buffer = new byte[tunnel.ReplyChunkSize];
        int read;
        while ((read = await tunnel.ReadAsync(buffer, cancellationToken)) > 0)
        {
            if (tunnel.Mode == Onion.TunnelMode.Duplex)
            {
                await tunnel.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
            }
        }

        if (tunnel.Mode == Onion.TunnelMode.Duplex)
        {
            await tunnel.CompleteAsync(cancellationToken);
        }
    }
}
