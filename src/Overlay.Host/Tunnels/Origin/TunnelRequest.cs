using Overlay.Identity;
using Overlay.Onion;

namespace Overlay.Host.Tunnels;

/// <summary>What tunnel to open.</summary>
public sealed record TunnelRequest
{
    /// <summary>The destination; null picks a random up peer.</summary>
    public NodeId? Destination { get; init; }

    /// <summary>How many relays (ignored when <see cref="Route"/> is set).</summary>
    public int Relays { get; init; } = 3;

    /// <summary>An explicit route: the relays in order, then the destination. Never retried.</summary>
    public IReadOnlyList<NodeId>? Route { get; init; }

    /// <summary>Duplex (default) or one-way.</summary>
    public TunnelMode Mode { get; init; } = TunnelMode.Duplex;

    /// <summary>The named service at the destination (1..32 bytes of UTF-8; only the destination learns it); null for its default.</summary>
    public string? Service { get; init; }

    /// <summary>One-way only: the message starts with a reply block for the destination (docs/protocol.md §7.8), which the header tells it.</summary>
    public bool ReplyBlockAttached { get; init; }

    /// <summary>The tunnel's deadline, rounded up to a deadline class; null uses the node's default.</summary>
    public TimeSpan? Deadline { get; init; }

    /// <summary>
    /// Request bytes sent in the header's own link message, so a short request costs every hop one
    /// message instead of two; at most <see cref="TunnelClient.MaxInitialDataBytes"/>.
    /// </summary>
    public ReadOnlyMemory<byte> InitialData { get; init; }

    /// <summary>The request ends with <see cref="InitialData"/>: its end marker goes in the same message.</summary>
    public bool CompleteWithInitialData { get; init; }

    /// <summary>
    /// Open a stream on a route this node keeps to the same destination and relay count (built on
    /// first use), instead of a route of its own: no public-key work at any hop, but the route's
    /// hops can link its streams (docs/protocol.md section 7.9). Duplex only. False (the default)
    /// gives the tunnel a route of its own.
    /// </summary>
    public bool Reuse { get; init; }
}
