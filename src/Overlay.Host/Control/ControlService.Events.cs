using Grpc.Core;
using V1 = Overlay.Protocol.Control.V1;

namespace Overlay.Host.Control;

/// <summary>Node events, filtered by type, to a bounded consumer.</summary>
internal sealed partial class ControlService
{
    public override async Task WatchEvents(V1.WatchEventsRequest request, IServerStreamWriter<V1.NodeEvent> responseStream, ServerCallContext context)
    {
        if (request.EventTypes.Any(t => t == V1.EventType.Unspecified || !System.Enum.IsDefined(t)))
        {
            throw ControlErrors.InvalidArgument("event_types: unknown event type");
        }

        var types = request.EventTypes.ToHashSet();
        using var subscription = events.Events.Subscribe(Control.EventsBufferSize, types.Count == 0 ? null : e => types.Contains(e.Type));
        await context.WriteResponseHeadersAsync(new Metadata());
        await UntilStoppingAsync(context, token => subscription.PumpAsync(responseStream, "events", token, () => ControlLog.ConsumerDropped(logger, "events", subscription.Capacity)));
    }
}
