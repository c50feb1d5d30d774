using Grpc.Core;
using V1 = Overlay.Protocol.Control.V1;

namespace Overlay.Host.Control;

/// <summary>Node events, filtered by type, to a bounded consumer; an application hears only of its own tunnels.</summary>
internal sealed partial class ControlService
{
    public override async Task WatchEvents(V1.WatchEventsRequest request, IServerStreamWriter<V1.NodeEvent> responseStream, ServerCallContext context)
    {
        if (request.EventTypes.Any(t => t == V1.EventType.Unspecified || !System.Enum.IsDefined(t)))
        {
            throw ControlErrors.InvalidArgument("event_types: unknown event type");
        }

        var types = request.EventTypes.ToHashSet();
        var caller = ControlCaller.Of(context);
        var everyTunnel = caller.Role == ControlRole.Operator;
        using var subscription = events.Events.Subscribe(Control.EventsBufferSize,
            e => (types.Count == 0 || types.Contains(e.Type)) && (everyTunnel || e.Tunnel is null || e.Tunnel.Client == caller.Name));
        await context.WriteResponseHeadersAsync(new Metadata());
        await UntilStoppingAsync(context, token => subscription.PumpAsync(responseStream, "events", token, () => ControlLog.ConsumerDropped(logger, "events", subscription.Capacity)));
    }
}
