using System.Diagnostics;
using System.Diagnostics.Metrics;
using Overlay.Errors;

namespace Overlay.Host.Telemetry;

/// <summary>The project's one ActivitySource and one Meter, and the names used with them.</summary>
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

/// <summary>The node's instruments, created from the node's <see cref="IMeterFactory"/>.</summary>
internal sealed class OverlayMetrics
{
    private readonly UpDownCounter<long> _activeTunnels;
    private readonly Counter<long> _failedTunnels;
    private readonly Counter<long> _relayedCells;
    private readonly Counter<long> _rejectedHeaders;

    public OverlayMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(OverlayTelemetry.Name);
        _activeTunnels = meter.CreateUpDownCounter<long>("overlay.tunnels.active", "{tunnel}", "Tunnels open at this node, by role");
        _failedTunnels = meter.CreateCounter<long>("overlay.tunnels.failed", "{tunnel}", "Tunnels that ended with an error, by role and error.type");
        _relayedCells = meter.CreateCounter<long>("overlay.relay.cells", "{cell}", "Cells relayed, by direction");
        _rejectedHeaders = meter.CreateCounter<long>("overlay.headers.rejected", "{header}", "Headers refused, by error.type");
    }

    public void TunnelOpened(string role) => _activeTunnels.Add(1, new KeyValuePair<string, object?>(OverlayTelemetry.RoleTag, role));

    public void TunnelClosed(string role) => _activeTunnels.Add(-1, new KeyValuePair<string, object?>(OverlayTelemetry.RoleTag, role));

    public void TunnelFailed(string role, TunnelErrorKind kind) => _failedTunnels.Add(1,
        new KeyValuePair<string, object?>(OverlayTelemetry.RoleTag, role),
        new KeyValuePair<string, object?>(OverlayTelemetry.ErrorTypeTag, kind.ToTag()));

    public void CellsRelayed(bool forward, int cells)
    {
        if (_relayedCells.Enabled)
        {
            _relayedCells.Add(cells, new KeyValuePair<string, object?>(OverlayTelemetry.DirectionTag, forward ? "forward" : "backward"));
        }
    }

    public void HeaderRejected(TunnelErrorKind kind) => _rejectedHeaders.Add(1, new KeyValuePair<string, object?>(OverlayTelemetry.ErrorTypeTag, kind.ToTag()));
}

/// <summary>Tunnel roles, as tag values.</summary>
internal static class TunnelRoles
{
    public const string Origin = "origin";
    public const string Relay = "relay";
    public const string Destination = "destination";
}
