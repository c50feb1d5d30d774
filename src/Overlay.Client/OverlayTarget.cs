using Google.Protobuf.WellKnownTypes;
using Overlay.Protocol.Control.V1;

namespace Overlay.Client;

/// <summary>Where a tunnel goes: a destination (or a random peer) through a number of relays, or an explicit route.</summary>
public sealed record OverlayTarget
{
    /// <summary>The destination's node id (64 hex digits); null picks a random up peer.</summary>
    public string? Destination { get; init; }

    /// <summary>Relays before the destination (0..the network's MaxRelays); null takes the node's default (3).</summary>
    public int? Relays { get; init; }

    /// <summary>An explicit route instead: the relays in order, then the destination. Never retried.</summary>
    public IReadOnlyList<string>? Route { get; init; }

    /// <summary>The named service at the destination (1..32 bytes of UTF-8; only the destination learns it); null for its default.</summary>
    public string? Service { get; init; }

    /// <summary>The tunnel's deadline (rounded up to the protocol's deadline classes); null takes the node's.</summary>
    public TimeSpan? Deadline { get; init; }

    /// <summary>
    /// True: a stream on a route the node keeps to the same destination and relay count (or route),
    /// built on first use, with no public-key work at any hop; the route's hops can link the streams
    /// on it. False (the default): a route of its own. Duplex tunnels only.
    /// </summary>
    public bool Reuse { get; init; }

    /// <summary>A tunnel to <paramref name="destination"/> through <paramref name="relays"/> relays.</summary>
    public static OverlayTarget To(string destination, int relays = 3) => new() { Destination = destination, Relays = relays };

    internal TunnelTarget ToWire()
    {
        if (Relays is < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(Relays), Relays, "relays cannot be negative");
        }

        var target = new TunnelTarget { Destination = Destination ?? "", Service = Service ?? "", Reuse = Reuse };
        if (Relays is { } relays)
        {
            target.Relays = (uint)relays;
        }

        if (Route is { } route)
        {
            target.Route.AddRange(route);
        }

        if (Deadline is { } deadline)
        {
            target.Deadline = Duration.FromTimeSpan(deadline);
        }

        return target;
    }
}
