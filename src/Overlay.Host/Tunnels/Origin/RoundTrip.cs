using Overlay.Identity;

namespace Overlay.Host.Tunnels;

/// <summary>The outcome of a round trip.</summary>
/// <param name="Route">The relays then the destination.</param>
/// <param name="Reply">The reply bytes.</param>
/// <param name="Elapsed">From opening the tunnel to the reply's end.</param>
public sealed record RoundTrip(IReadOnlyList<NodeId> Route, byte[] Reply, TimeSpan Elapsed);
