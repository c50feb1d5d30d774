using Microsoft.Extensions.Options;
using Overlay.Errors;
using Overlay.Host.Options;
using Overlay.Identity;

namespace Overlay.Host.Directory;

/// <summary>
/// Picks routes: distinct random up peers, never the origin or the destination, with the origin
/// project's optional random spread around the requested relay count. A request made before
/// enough peers are up waits for them until its deadline instead of failing at once.
/// </summary>
public sealed class RouteSelector
{
    private readonly PeerDirectory _directory;
    private readonly NodeState _node;
    private readonly TunnelOptions _options;

    internal RouteSelector(PeerDirectory directory, NodeState node, IOptions<OverlayOptions> options)
    {
        _directory = directory;
        _node = node;
        _options = options.Value.Tunnels;
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
            count = Math.Max(0, relays + Random.Shared.Next(-_options.RelaySpread, _options.RelaySpread + 1));
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
        var up = _directory.Sample(int.MaxValue, PeerStatus.Up);
        NodeDescriptor target;
        if (destination is { } id)
        {
            var known = _directory.Find(id);
            if (known is null || known.Status != PeerStatus.Up)
            {
                return false;
            }

            target = known.Descriptor;
        }
        else
        {
            var choices = up.Where(p => !exclude.Contains(p.Descriptor.Id)).ToList();
            if (choices.Count == 0)
            {
                return false;
            }

            target = choices[Random.Shared.Next(choices.Count)].Descriptor;
        }

        var relaysFound = up
            .Where(p => p.Descriptor.Id != target.Id && !exclude.Contains(p.Descriptor.Id))
            .Take(relays)
            .Select(p => p.Descriptor)
            .ToList();
        if (relaysFound.Count < relays)
        {
            return false;
        }

        relaysFound.Add(target);
        route = relaysFound;
        return true;
    }
}
