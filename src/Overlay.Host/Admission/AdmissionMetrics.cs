using System.Diagnostics.Metrics;
using Overlay.Host.Telemetry;

namespace Overlay.Host.Admission;

/// <summary>Which admission limit refused something: the <c>overlay.limit</c> tag of <c>overlay.admission.refused</c>.</summary>
internal static class AdmissionLimits
{
    public const string Connections = "connections";
    public const string HeaderRate = "header_rate";
    public const string PendingHeaders = "pending_headers";
    public const string HeaderQueue = "header_queue";
    public const string TunnelSlots = "tunnel_slots";
    public const string RequestSize = "request_size";
}

/// <summary>Admission's instruments, on the node's meter (same name and instance tag as <see cref="OverlayMetrics"/>).</summary>
internal sealed class AdmissionMetrics
{
    public const string LimitTag = "overlay.limit";

    private readonly Counter<long> _refused;
    private readonly Counter<long> _abandoned;
    private readonly Counter<long> _paced;

    public AdmissionMetrics(IMeterFactory meterFactory, NodeState node)
    {
        var meter = OverlayTelemetry.NodeMeter(meterFactory, node);
        _refused = meter.CreateCounter<long>("overlay.admission.refused", "{refusal}", "Connections, streams and requests refused at the link endpoint, by overlay.limit");
        _abandoned = meter.CreateCounter<long>("overlay.admission.abandoned", "{stream}", "Relay streams the previous hop reset or abandoned before sending their header");
        _paced = meter.CreateCounter<long>("overlay.admission.paced", "{stream}", "Relay streams held until their previous hop's header rate allowed them");
    }

    public void Refused(string limit) => _refused.Add(1, new KeyValuePair<string, object?>(LimitTag, limit));

    public void Abandoned() => _abandoned.Add(1);

    public void Paced() => _paced.Add(1);
}
