using System.Diagnostics;
using System.Diagnostics.Metrics;
using Overlay.Errors;

namespace Overlay.Host.Telemetry;

/// <summary>The project's one ActivitySource and one Meter name, and the tag names used with them.</summary>
public static class OverlayTelemetry
{
    /// <summary>The name of the ActivitySource and of the Meter.</summary>
    public const string Name = "Overlay";

    /// <summary>Spans of tunnel work. Link work never parents on a peer-supplied context.</summary>
    public static ActivitySource ActivitySource { get; } = new(Name, typeof(OverlayTelemetry).Assembly.GetName().Version?.ToString());

    /// <summary>Tag: the tunnel role at this node (origin, relay, destination).</summary>
    public const string RoleTag = "overlay.tunnel.role";

    /// <summary>Tag: the OpenTelemetry error type.</summary>
    public const string ErrorTypeTag = "error.type";

    /// <summary>Tag: the failing hop as the origin learned it.</summary>
    public const string FailingHopTag = "overlay.tunnel.failing_hop";

    /// <summary>Tag: cell direction (forward, backward).</summary>
    public const string DirectionTag = "overlay.cell.direction";

    /// <summary>Tag: peer status.</summary>
    public const string PeerStatusTag = "overlay.peer.status";

    /// <summary>Meter tag naming the node an instrument belongs to (many nodes can share a process).</summary>
    public const string InstanceTag = "service.instance.id";

    /// <summary>
    /// The node's meter: the one Meter name, with the node id as a meter tag so per-node exporters
    /// can pick their own node's instruments in a shared process (the factory returns the same meter each time).
    /// </summary>
    internal static Meter NodeMeter(IMeterFactory meterFactory, NodeState node) => meterFactory.Create(new MeterOptions(Name)
    {
        Tags = [new KeyValuePair<string, object?>(InstanceTag, node.Id.ToString())],
    });

    /// <summary>Marks a span failed with a typed tunnel error.</summary>
    public static void RecordFailure(this Activity? activity, TunnelErrorKind kind, string? description = null)
    {
        if (activity is null)
        {
            return;
        }

        activity.SetTag(ErrorTypeTag, kind.ToTag());
        activity.SetStatus(ActivityStatusCode.Error, description ?? kind.ToTag());
    }
}

/// <summary>
/// The node's instruments (OpenTelemetry semantic-convention names, UCUM units), from the node's
/// <see cref="IMeterFactory"/> with the node id as a meter tag so per-node exporters can pick
/// their own node's instruments in a shared process.
/// </summary>
internal sealed class OverlayMetrics
{
    private readonly UpDownCounter<long> _activeTunnels;
    private readonly Counter<long> _openedTunnels;
    private readonly Counter<long> _failedTunnels;
    private readonly Counter<long> _relayedCells;
    private readonly Counter<long> _relayedBytes;
    private readonly Counter<long> _rejectedHeaders;
    private readonly Histogram<double> _setupTime;
    private readonly Histogram<double> _roundTripTime;

    public OverlayMetrics(IMeterFactory meterFactory, NodeState node, Directory.PeerDirectory directory)
    {
        var meter = OverlayTelemetry.NodeMeter(meterFactory, node);
        _activeTunnels = meter.CreateUpDownCounter<long>("overlay.tunnels.active", "{tunnel}", "Tunnels open at this node, by role");
        _openedTunnels = meter.CreateCounter<long>("overlay.tunnels.opened", "{tunnel}", "Tunnels opened at this node, by role");
        _failedTunnels = meter.CreateCounter<long>("overlay.tunnels.failed", "{tunnel}", "Tunnels that ended with an error, by role and error.type");
        _relayedCells = meter.CreateCounter<long>("overlay.relay.cells", "{cell}", "Cells relayed, by direction");
        _relayedBytes = meter.CreateCounter<long>("overlay.relay.bytes", "By", "Bytes of cells relayed, by direction");
        _rejectedHeaders = meter.CreateCounter<long>("overlay.headers.rejected", "{header}", "Headers refused, by error.type (replayed: replay-cache hits)");
        _setupTime = meter.CreateHistogram<double>("overlay.tunnel.setup.duration", "s", "Origin: from the open request to the header on the first link");
        _roundTripTime = meter.CreateHistogram<double>("overlay.tunnel.round_trip.duration", "s", "Origin: from the open request to the reply's end marker");
        meter.CreateObservableGauge("overlay.peers", () => directory.Peers
            .GroupBy(p => p.Status)
            .Select(g => new Measurement<int>(g.Count(), new KeyValuePair<string, object?>(OverlayTelemetry.PeerStatusTag, g.Key.ToString().ToLowerInvariant()))),
            "{peer}", "Peers known to this node, by status");
    }

    public void TunnelOpened(string role)
    {
        var tag = new KeyValuePair<string, object?>(OverlayTelemetry.RoleTag, role);
        _activeTunnels.Add(1, tag);
        _openedTunnels.Add(1, tag);
    }

    public void TunnelClosed(string role) => _activeTunnels.Add(-1, new KeyValuePair<string, object?>(OverlayTelemetry.RoleTag, role));

    public void TunnelFailed(string role, TunnelErrorKind kind) => _failedTunnels.Add(1,
        new KeyValuePair<string, object?>(OverlayTelemetry.RoleTag, role),
        new KeyValuePair<string, object?>(OverlayTelemetry.ErrorTypeTag, kind.ToTag()));

    public void CellsRelayed(bool forward, int cells, int bytes)
    {
        if (_relayedCells.Enabled || _relayedBytes.Enabled)
        {
            var tag = new KeyValuePair<string, object?>(OverlayTelemetry.DirectionTag, forward ? "forward" : "backward");
            _relayedCells.Add(cells, tag);
            _relayedBytes.Add(bytes, tag);
        }
    }

    public void HeaderRejected(TunnelErrorKind kind) => _rejectedHeaders.Add(1, new KeyValuePair<string, object?>(OverlayTelemetry.ErrorTypeTag, kind.ToTag()));

    public void SetupCompleted(TimeSpan elapsed) => _setupTime.Record(elapsed.TotalSeconds);

    public void RoundTripCompleted(TimeSpan elapsed) => _roundTripTime.Record(elapsed.TotalSeconds);
}

/// <summary>Tunnel roles, as tag values.</summary>
internal static class TunnelRoles
{
    public const string Origin = "origin";
    public const string Relay = "relay";
    public const string Destination = "destination";
}
