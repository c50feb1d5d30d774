using Grpc.Core;
using Overlay.Host.Tunnels;
using Overlay.Identity;
using Overlay.Onion;
using V1 = Overlay.Protocol.Control.V1;

namespace Overlay.Host.Control;

/// <summary>Where a tunnel goes: a control request's target checked against the network and the directory.</summary>
internal sealed partial class ControlService
{
    private Target ParseTarget(V1.TunnelTarget target, TunnelMode mode, ServerCallContext context)
    {
        var maxRelays = node.Network.MaxRelays;
        string? service = null;
        if (target.Service.Length > 0)
        {
            service = ControlServiceOptions.IsValidName(target.Service)
                ? target.Service
                : throw ControlErrors.InvalidArgument($"service must be 1 to {ControlServiceOptions.MaxNameBytes} bytes of UTF-8 without NUL, and not the reserved '{Tunnels.Streams.StreamFrames.RouteService}'");
        }

        if (target.Reuse && mode != TunnelMode.Duplex)
        {
            throw ControlErrors.InvalidArgument("reuse is for duplex tunnels only: a one-way send has a route of its own");
        }

        TimeSpan? deadline = null;
        if (target.Deadline is { } requested)
        {
            var value = requested.ToTimeSpan();
            if (value <= TimeSpan.Zero || value > LongestDeadline)
            {
                throw ControlErrors.InvalidArgument("deadline must be positive and at most 6 hours");
            }

            deadline = value;
        }

        if (context.Deadline != DateTime.MaxValue)
        {
            var remaining = context.Deadline - time.GetUtcNow().UtcDateTime;
            deadline = deadline is { } d && d < remaining ? d : remaining;
        }

        if (target.Route.Count > 0)
        {
            if (target.Route.Count > maxRelays + 1)
            {
                throw ControlErrors.InvalidArgument($"route has {target.Route.Count} hops; at most {maxRelays + 1} (this network's MaxRelays is {maxRelays})");
            }

            var route = new List<NodeId>(target.Route.Count);
            for (var i = 0; i < target.Route.Count; i++)
            {
                var id = ParseNodeId(target.Route[i], $"route[{i}]");
                var last = i == target.Route.Count - 1;
                if (directory.Find(id) is null)
                {
                    throw ControlErrors.NotFound(last ? "unknown_destination" : "unknown_relay",
                        $"route[{i}] ({id.ToShortString()}) is not in this node's directory; `overlay peers` lists the nodes it knows");
                }

                route.Add(id);
            }

            return new Target(new TunnelRequest { Route = route, Destination = route[^1], Relays = route.Count - 1, Mode = mode, Deadline = deadline, Service = service, Reuse = target.Reuse });
        }

        var relays = target.HasRelays ? target.Relays : DefaultRelays;
        if (relays > maxRelays)
        {
            throw ControlErrors.InvalidArgument($"relays must be between 0 and {maxRelays} (this network's MaxRelays), not {relays}");
        }

        NodeId? destination = null;
        if (target.Destination.Length > 0)
        {
            var id = ParseNodeId(target.Destination, "destination");
            if (id == node.Id)
            {
                throw ControlErrors.InvalidArgument("the destination is this node itself; name another node");
            }

            if (directory.Find(id) is null)
            {
                throw ControlErrors.NotFound("unknown_destination", $"destination {id.ToShortString()} is not in this node's directory; `overlay peers` lists the nodes it knows");
            }

            destination = id;
        }

        return new Target(new TunnelRequest { Destination = destination, Relays = (int)relays, Mode = mode, Deadline = deadline, Service = service, Reuse = target.Reuse });
    }

    private sealed record Target(TunnelRequest Request);
}
