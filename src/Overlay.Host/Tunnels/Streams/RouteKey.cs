using Overlay.Identity;

namespace Overlay.Host.Tunnels.Streams;

/// <summary>Which requests may share a route: the same explicit route, or the same destination (or "any") and relay count.</summary>
internal readonly record struct RouteKey(string? ExplicitRoute, NodeId? Destination, int Relays)
{
    public static RouteKey Of(TunnelRequest request) => request.Route is { } route
        ? new RouteKey(string.Join(',', route), null, route.Count - 1)
        : new RouteKey(null, request.Destination, request.Relays);
}
