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
