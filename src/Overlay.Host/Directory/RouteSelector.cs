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
public sealed class RouteSelector
{
    private readonly PeerDirectory _directory;
    private readonly NodeState _node;
    private readonly TunnelOptions _options;
    private readonly bool _diverse;

    internal RouteSelector(PeerDirectory directory, NodeState node, IOptions<OverlayOptions> options)
    {
        _directory = directory;
        _node = node;
        _options = options.Value.Tunnels;
        _diverse = options.Value.Directory.RouteDiversity;
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

    /// <summary>Resolves an explicit route of node ids (relays then the destination) to descriptors.</summary>
    public IReadOnlyList<NodeDescriptor> Resolve(IReadOnlyList<NodeId> route)
    {
        var resolved = new List<NodeDescriptor>(route.Count);
        foreach (var id in route)
        {
            resolved.Add(_directory.Find(id)?.Descriptor
                ?? throw new TunnelException(TunnelErrorKind.UnknownNextHop, resolved.Count + 1, $"hop {resolved.Count + 1} ({id.ToShortString()}) is not in the directory"));
        }

        return resolved;
    }

    private bool TrySelect(NodeId? destination, int relays, IReadOnlyCollection<NodeId> exclude, out IReadOnlyList<NodeDescriptor> route)
    {
        route = [];
        // Shuffled by the directory: taking the first that fit is a uniform random choice.
        var up = _directory.Sample(int.MaxValue, PeerStatus.Up);
        PeerInfo target;
        if (destination is { } id)
        {
            var known = _directory.Find(id);
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
        var relaysFound = new List<NodeDescriptor>(relays + 1);
        foreach (var peer in up)
        {
            if (relaysFound.Count == relays)
            {
                break;
            }

            if (peer.Descriptor.Id != target.Descriptor.Id && !exclude.Contains(peer.Descriptor.Id) && TryTakeBlock(blocks, peer))
            {
                relaysFound.Add(peer.Descriptor);
            }
        }

        if (relaysFound.Count < relays)
        {
            return false;
        }

        relaysFound.Add(target.Descriptor);
        route = relaysFound;
        return true;
    }

    // One hop per diversity block: false when the route already has a hop from the peer's block.
    // A peer of unknown address (never proved) is a block of its own.
    private bool TryTakeBlock(HashSet<IPNetwork> blocks, PeerInfo peer) =>
        !_diverse || peer.Address is not { } address || blocks.Add(PeerAddress.DiversityBlock(address));
}
