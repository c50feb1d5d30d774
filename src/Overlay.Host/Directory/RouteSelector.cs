using System.Net;
using System.Security.Cryptography;
using Microsoft.Extensions.Options;
using Overlay.Errors;
using Overlay.Host.Link;
using Overlay.Host.Options;
using Overlay.Identity;

namespace Overlay.Host.Directory;

/// <summary>
/// Picks routes: distinct random up peers (from a CSPRNG: an adversary must not predict routes),
/// never the origin or the destination, at most one hop per address block (IPv4 /16, IPv6 /32)
/// unless Overlay:Directory:RouteDiversity is off, with the origin project's optional random
/// spread around the requested relay count. A request made before enough peers are up waits for
/// them until its deadline instead of failing at once.
/// </summary>
/// <remarks>
/// A peer this node admitted only moments ago is still unknown to most of the network (gossip
/// reaches everyone in about ⌈log₄ N⌉ + 2 rounds), so a relay asked to reach it fails with
/// UnknownNextHop, and a new node does not yet know the others either. Routes therefore take
/// settled peers first and a newcomer only when too few settled ones fit; with every peer
/// settled the choice is uniform as before.
/// </remarks>
public sealed class RouteSelector
{
    private readonly PeerDirectory _directory;
    private readonly NodeState _node;
    private readonly TunnelOptions _options;
    private readonly bool _diverse;
    private readonly TimeSpan _gossipInterval;
    private readonly TimeProvider _time;

    internal RouteSelector(PeerDirectory directory, NodeState node, IOptions<OverlayOptions> options, TimeProvider time)
    {
        _directory = directory;
        _node = node;
        _options = options.Value.Tunnels;
        _diverse = options.Value.Directory.RouteDiversity;
        _gossipInterval = options.Value.Directory.GossipInterval;
        _time = time;
    }

    /// <summary>How long after admission a peer counts as known to the whole network: ⌈log₄ N⌉ + 2 gossip rounds for N nodes.</summary>
    public TimeSpan NewcomerSettleTime
    {
        get
        {
            var nodes = _directory.Count + 1;
            var rounds = 2;
            for (long reach = 1; reach < nodes; reach *= 4)
            {
                rounds++;
            }

            return _gossipInterval * rounds;
        }
    }

    /// <summary>
    /// Relays then the destination. <paramref name="destination"/> null picks a random up peer.
    /// <paramref name="exclude"/> lists peers that just failed this tunnel.
    /// </summary>
    public async Task<IReadOnlyList<NodeDescriptor>> SelectAsync(NodeId? destination, int relays, IReadOnlyCollection<NodeId> exclude, CancellationToken cancellationToken)
    {
        var count = relays;
        if (_options.RelaySpread > 0)
        {
            count = Math.Max(0, relays + RandomNumberGenerator.GetInt32(-_options.RelaySpread, _options.RelaySpread + 1));
        }

        count = Math.Min(count, _node.Network.MaxRelays);
        while (true)
        {
            var changed = _directory.WaitForChangeAsync(cancellationToken);
            if (TrySelect(destination, count, exclude, out var route))
            {
                return route;
            }

            try
            {
                await changed;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                throw new TunnelException(TunnelErrorKind.NoRoute, 0,
                    $"not enough up peers for {count} relays{(destination is null ? "" : $" to {destination.Value.ToShortString()}")} before the deadline");
            }
        }
    }

    /// <summary>
    /// A reply route for a reply block this node makes: <paramref name="relays"/> relays, none of them in
    /// <paramref name="exclude"/> (the forward route it must not share), then this node itself. No spread:
    /// the caller asked for a route disjoint from another, not for a count to hide.
    /// </summary>
    public async Task<IReadOnlyList<NodeDescriptor>> SelectReplyRouteAsync(int relays, IReadOnlyCollection<NodeId> exclude, CancellationToken cancellationToken)
    {
        while (true)
        {
            var changed = _directory.WaitForChangeAsync(cancellationToken);
            if (_node.Descriptor is { } self && TrySelectRelays(self.Id, relays, exclude, [], out var route))
            {
                route.Add(self);
                return route;
            }

            try
            {
                await changed;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                throw new TunnelException(TunnelErrorKind.NoRoute, 0, $"not enough up peers outside the forward route for a reply route of {relays} relays before the deadline");
            }
        }
    }

    /// <summary>Resolves an explicit route of node ids (relays then the destination) to descriptors.</summary>
    public IReadOnlyList<NodeDescriptor> Resolve(IReadOnlyList<NodeId> route)
    {
        var resolved = new List<NodeDescriptor>(route.Count);
        foreach (var id in route)
        {
            resolved.Add(_directory.FindMember(id)?.Descriptor
                ?? throw new TunnelException(TunnelErrorKind.UnknownNextHop, resolved.Count + 1, $"hop {resolved.Count + 1} ({id.ToShortString()}) is not in the directory"));
        }

        return resolved;
    }

    private bool TrySelect(NodeId? destination, int relays, IReadOnlyCollection<NodeId> exclude, out IReadOnlyList<NodeDescriptor> route)
    {
        route = [];
        // Shuffled by the directory: taking the first that fit is a uniform random choice, settled peers first.
        var up = SettledFirst(_directory.Sample(int.MaxValue, PeerStatus.Up));
        PeerInfo target;
        if (destination is { } id)
        {
            var known = _directory.FindMember(id);
            if (known is null || known.Status != PeerStatus.Up)
            {
                return false;
            }

            target = known;
        }
        else
        {
            var choice = up.Find(p => !exclude.Contains(p.Descriptor.Id));
            if (choice is null)
            {
                return false;
            }

            target = choice;
        }

        var blocks = new HashSet<IPNetwork>();
        TryTakeBlock(blocks, target);
        if (!TrySelectRelays(target.Descriptor.Id, relays, exclude, blocks, up, out var relaysFound))
        {
            return false;
        }

        relaysFound.Add(target.Descriptor);
        route = relaysFound;
        return true;
    }

    private bool TrySelectRelays(NodeId target, int relays, IReadOnlyCollection<NodeId> exclude, HashSet<IPNetwork> blocks, out List<NodeDescriptor> found) =>
        TrySelectRelays(target, relays, exclude, blocks, SettledFirst(_directory.Sample(int.MaxValue, PeerStatus.Up)), out found);

    // The first peers of `up` (already shuffled) that are neither the target nor excluded, one per address block.
    private bool TrySelectRelays(NodeId target, int relays, IReadOnlyCollection<NodeId> exclude, HashSet<IPNetwork> blocks, List<PeerInfo> up, out List<NodeDescriptor> found)
    {
        found = new List<NodeDescriptor>(relays + 1);
        foreach (var peer in up)
        {
            if (found.Count == relays)
            {
                break;
            }

            if (peer.Descriptor.Id != target && !exclude.Contains(peer.Descriptor.Id) && TryTakeBlock(blocks, peer))
            {
                found.Add(peer.Descriptor);
            }
        }

        return found.Count == relays;
    }

    // A stable partition: the shuffle's order is kept within the settled and within the newcomers.
    private List<PeerInfo> SettledFirst(List<PeerInfo> peers)
    {
        var settledBefore = _time.GetUtcNow() - NewcomerSettleTime;
        var newcomers = 0;
        for (var i = 0; i < peers.Count; i++)
        {
            if (peers[i].FirstSeen > settledBefore)
            {
                newcomers++;
            }
        }

        if (newcomers == 0)
        {
            return peers;
        }

        var ordered = new List<PeerInfo>(peers.Count);
        ordered.AddRange(peers.Where(p => p.FirstSeen <= settledBefore));
        ordered.AddRange(peers.Where(p => p.FirstSeen > settledBefore));
        return ordered;
    }

    // One hop per diversity block: false when the route already has a hop from the peer's block.
    // A peer of unknown address (never proved) is a block of its own.
    private bool TryTakeBlock(HashSet<IPNetwork> blocks, PeerInfo peer) =>
        !_diverse || peer.Address is not { } address || blocks.Add(PeerAddress.DiversityBlock(address));
}
