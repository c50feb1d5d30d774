using Overlay.Identity;

namespace Overlay.Host.Telemetry;

/// <summary>Tracing switches (<c>Overlay:Telemetry</c>), validated at start by <see cref="TelemetryOptionsValidator"/>.</summary>
public sealed class TelemetryOptions
{
    /// <summary>The configuration section name.</summary>
    public const string SectionName = "Overlay:Telemetry";

    /// <summary>
    /// As origin, seal a fresh trace context per tunnel into the layer of every hop whose descriptor
    /// advertises that it honours one, so those hops join one trace. Only where the network's
    /// membership is controlled (<c>Overlay:Directory:AllowedNodeIds</c> set). Default false.
    /// </summary>
    public bool SealTraceContext { get; set; }

    /// <summary>
    /// As relay or destination, parent this hop's spans on a sealed context from the origin, and
    /// advertise so in the descriptor. A hop honours it only because its own configuration says so.
    /// Default false.
    /// </summary>
    public bool HonorSealedTraceContext { get; set; }

    /// <summary>OTLP endpoint; when unset the standard <c>OTEL_EXPORTER_OTLP_*</c> variables decide, and with none nothing is exported.</summary>
    public string? OtlpEndpoint { get; set; }

    /// <summary>The descriptor features these switches announce.</summary>
    internal DescriptorFeatures AdvertisedFeatures =>
        HonorSealedTraceContext ? DescriptorFeatures.SealedTraceContext : DescriptorFeatures.None;
}
