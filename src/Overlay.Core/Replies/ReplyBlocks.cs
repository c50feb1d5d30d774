using Overlay.Crypto;
using Overlay.Identity;
using Overlay.Onion;
using Overlay.Protocol;

namespace Overlay.Replies;

/// <summary>Makes reply blocks (docs/protocol.md §7.8).</summary>
public static class ReplyBlocks
{
    /// <summary>
    /// Builds a reply block for <paramref name="route"/>: the reply route's relays in order, then this node (the
    /// maker) last. Its expiry is the earliest onion-key expiry on the route, or <paramref name="notAfter"/> if sooner.
    /// Returns the block to hand out and, in <paramref name="secret"/>, what this node keeps to receive the reply.
    /// </summary>
    /// <param name="builder">The network's header builder (its random source draws the reply id and the header's keys).</param>
    /// <param name="route">The reply route's relays, then the maker; every hop's current descriptor.</param>
    /// <param name="deadline">The deadline class the reply tunnel runs under, from when the replier sends it.</param>
    /// <param name="notAfter">The latest expiry the maker accepts.</param>
    /// <param name="secret">What the maker keeps: the reply id and the relays' layer keys.</param>
    public static ReplyBlock Create(OnionHeaderBuilder builder, IReadOnlyList<NodeDescriptor> route, DeadlineClass deadline, DateTimeOffset notAfter, out ReplyBlockSecret secret)
    {
        ArgumentNullException.ThrowIfNull(route);
        var expiresAt = notAfter;
        var hops = new RouteHop[route.Count];
        for (var i = 0; i < route.Count; i++)
        {
            hops[i] = route[i].ToRouteHop();
            if (route[i].OnionExpiresAt < expiresAt)
            {
                expiresAt = route[i].OnionExpiresAt;
            }
        }

        return Create(builder, hops, deadline, expiresAt, out secret);
    }

    /// <summary>
    /// Builds a reply block for <paramref name="route"/> (relays, then the maker) that expires at
    /// <paramref name="expiresAt"/>, which the caller has made no later than any hop's onion-key expiry.
    /// </summary>
    public static ReplyBlock Create(OnionHeaderBuilder builder, IReadOnlyList<RouteHop> route, DeadlineClass deadline, DateTimeOffset expiresAt, out ReplyBlockSecret secret)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(route);
        if (builder.Parameters.Construction != CellConstruction.Baseline)
        {
            throw new InvalidOperationException("reply blocks need the Baseline cell construction: a replier holds no hop keys to build a MAC array (docs/protocol.md §7.8)");
        }

        if (route.Count == 0)
        {
            throw new ArgumentException("a reply route ends at its maker", nameof(route));
        }

        // Whole seconds, as encoded: the block and the secret must name the same instant.
        expiresAt = DateTimeOffset.FromUnixTimeSeconds(expiresAt.ToUnixTimeSeconds());
        Span<byte> replyId = stackalloc byte[ReplyBlockSecret.ReplyIdSize];
        do
        {
            builder.Random.Fill(replyId);
        }
        while (replyId.IndexOfAnyExcept((byte)0) < 0);

        var header = new byte[builder.HeaderSize];
        using var keys = builder.Build(route, TunnelMode.ReplyBlock, deadline, header, replyId: replyId);
        var maker = keys.Hops[keys.RelayCount];
        secret = ReplyBlockSecret.Create(replyId, expiresAt, keys);
        return ReplyBlock.Create(route[0].Id, expiresAt, maker.ForwardSeal, maker.BackwardSeal, header);
    }
}
