namespace Overlay.Host.Tunnels;

/// <summary>
/// What a destination does with a tunnel that ends at this node (the origin project's "inner
/// service"). The default echoes; the control API lets applications register their own.
/// </summary>
public interface ITunnelHandler
{
    /// <summary>Reads the request from <paramref name="tunnel"/> and, for duplex tunnels, writes a reply.</summary>
    Task HandleAsync(IncomingTunnel tunnel, CancellationToken cancellationToken);

    /// <summary>True when this node hosts the named <paramref name="service"/>; tunnels naming any other are refused before the handler runs.</summary>
    bool Hosts(string service) => false;
}
