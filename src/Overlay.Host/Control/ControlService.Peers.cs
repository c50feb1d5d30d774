using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Overlay.Host.Directory;
using V1 = Overlay.Protocol.Control.V1;

namespace Overlay.Host.Control;

/// <summary>The node's peers: list, add, remove, watch.</summary>
internal sealed partial class ControlService
{
    public override Task<V1.ListPeersResponse> ListPeers(V1.ListPeersRequest request, ServerCallContext context)
    {
        var response = new V1.ListPeersResponse();
        response.Peers.AddRange(directory.Peers.OrderBy(p => p.Descriptor.Id.ToString(), StringComparer.Ordinal).Select(ToPeer));
        response.Banned.AddRange(directory.Banned.Select(id => id.ToString()).Order(StringComparer.Ordinal));
        return Task.FromResult(response);
    }

    public override async Task<V1.Peer> AddPeer(V1.AddPeerRequest request, ServerCallContext context)
    {
        if (!Uri.TryCreate(request.Endpoint, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https") || url.Port <= 0)
        {
            throw ControlErrors.InvalidArgument($"endpoint '{request.Endpoint}' is not an http or https URL with a port (e.g. http://10.0.0.7:7400)");
        }

        var descriptor = await directoryService.AddPeerAsync(url, context.CancellationToken);
        if (descriptor is null)
        {
            throw ControlErrors.Error(StatusCode.Unavailable, "peer_unreachable",
                $"the node at {url} did not prove its identity (unreachable, another network, or it advertises another endpoint); see this node's log");
        }

        return directory.Find(descriptor.Id) is { } peer
            ? ToPeer(peer)
            : throw ControlErrors.Error(StatusCode.FailedPrecondition, "not_admitted",
                $"node {descriptor.Id.ToShortString()} proved its identity but is not admitted (banned, not in Overlay:Directory:AllowedNodeIds, or its address block or the directory is full)");
    }

    public override Task<V1.RemovePeerResponse> RemovePeer(V1.RemovePeerRequest request, ServerCallContext context)
    {
        var id = ParseNodeId(request.NodeId, "node_id");
        var known = directory.Find(id) is not null;
        if (!known && !request.Ban)
        {
            throw ControlErrors.NotFound("unknown_peer", $"peer {id.ToShortString()} is not in this node's directory; `overlay peers` lists the known ones");
        }

        var removed = request.Ban ? directory.Ban(id) : directory.Remove(id);
        return Task.FromResult(new V1.RemovePeerResponse { Removed = removed, Banned = request.Ban });
    }

    public override async Task WatchPeers(V1.WatchPeersRequest request, IServerStreamWriter<V1.PeerChange> responseStream, ServerCallContext context)
    {
        using var subscription = events.Peers.Subscribe(Control.EventsBufferSize);
        if (request.IncludeCurrent)
        {
            foreach (var peer in directory.Peers)
            {
                subscription.Offer(new V1.PeerChange
                {
                    NodeId = peer.Descriptor.Id.ToString(),
                    Status = ControlEvents.ToWire(peer.Status),
                    Endpoint = peer.Descriptor.Endpoint.ToString(),
                    Time = Timestamp.FromDateTimeOffset(peer.LastSeen),
                });
            }
        }

        await context.WriteResponseHeadersAsync(new Metadata());
        await UntilStoppingAsync(context, token => subscription.PumpAsync(responseStream, "peer", token, () => ControlLog.ConsumerDropped(logger, "peer", subscription.Capacity)));
    }

    private static V1.Peer ToPeer(PeerInfo peer) => new()
    {
        NodeId = peer.Descriptor.Id.ToString(),
        Endpoint = peer.Descriptor.Endpoint.ToString(),
        Status = ControlEvents.ToWire(peer.Status),
        ConsecutiveFailures = (uint)peer.ConsecutiveFailures,
        LastSeen = Timestamp.FromDateTimeOffset(peer.LastSeen),
        OnionEpoch = peer.Descriptor.OnionEpoch,
        OnionExpiresAt = Timestamp.FromDateTimeOffset(peer.Descriptor.OnionExpiresAt),
    };
}
