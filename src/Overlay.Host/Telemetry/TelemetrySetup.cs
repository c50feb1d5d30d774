using System.Diagnostics;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using Overlay.Host.Options;

namespace Overlay.Host.Telemetry;

/// <summary>
/// OpenTelemetry for one node: its own tracer and meter providers with a resource naming the node
/// (<c>service.instance.id</c> = node id), exporting by OTLP only when an endpoint is configured.
/// Several nodes can share a process (devnet, tests): each provider forwards only the spans tagged
/// with its node and only its node's instruments, so everything is exported exactly once.
/// </summary>
internal static class TelemetrySetup
{
    public static void AddOverlayTelemetry(this IServiceCollection services, IConfiguration configuration)
    {
        // Whether to create providers at all is decided while services are registered; the exporters
        // themselves take the validated endpoint.
        var endpoint = configuration.GetSection(TelemetryOptions.SectionName).Get<TelemetryOptions>()?.OtlpEndpoint
            ?? Environment.GetEnvironmentVariable("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            ?? Environment.GetEnvironmentVariable("OTEL_EXPORTER_OTLP_ENDPOINT");
        if (string.IsNullOrWhiteSpace(endpoint))
        {
            return; // nothing to export to: no providers, no overhead, nothing fails
        }

        var serviceName = Environment.GetEnvironmentVariable("OTEL_SERVICE_NAME") ?? "overlay-node";
        var owner = new NodeIdentityHolder();
        services.AddSingleton(owner);
        services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddDetector(sp => new NodeResourceDetector(serviceName, sp.GetRequiredService<NodeState>())))
            .WithTracing(tracing => tracing
                .AddSource(OverlayTelemetry.Name)
                .AddAspNetCoreInstrumentation(aspnet =>
                    // Link calls are the anonymous path: never traced by the web host (and never parented on a peer's headers).
                    aspnet.Filter = context => !context.Request.Path.StartsWithSegments("/overlay.v1.Link", StringComparison.Ordinal))
                .AddProcessor(sp => new NodeSpanFilter(
                    sp.GetRequiredService<NodeState>().Id.ToString(),
                    new BatchActivityExportProcessor(new OtlpTraceExporter(ExporterOptions(ConfiguredEndpoint(sp)))))))
            .WithMetrics(metrics => metrics
                .AddMeter(OverlayTelemetry.Name)
                .AddView(instrument => BelongsTo(instrument, owner) ? null : MetricStreamConfiguration.Drop)
                .AddReader(sp => new PeriodicExportingMetricReader(new OtlpMetricExporter(ExporterOptions(ConfiguredEndpoint(sp))))));
    }

    // A view sees the instruments of every node in the process; keep the ones tagged with ours.
    private static bool BelongsTo(System.Diagnostics.Metrics.Instrument instrument, NodeIdentityHolder owner)
    {
        if (owner.Id is not { } id)
        {
            return false;
        }

        foreach (var tag in instrument.Meter.Tags ?? [])
        {
            if (tag.Key == OverlayTelemetry.InstanceTag)
            {
                return Equals(tag.Value, id);
            }
        }

        return false;
    }

    private static string? ConfiguredEndpoint(IServiceProvider services) =>
        services.GetRequiredService<IOptions<OverlayOptions>>().Value.Telemetry.OtlpEndpoint;

    private static OtlpExporterOptions ExporterOptions(string? configured)
    {
        // The parameterless options read OTEL_EXPORTER_OTLP_ENDPOINT, _PROTOCOL, _HEADERS... themselves.
        var exporter = new OtlpExporterOptions();
        if (configured is not null)
        {
            exporter.Endpoint = new Uri(configured);
            exporter.Protocol = OtlpExportProtocol.Grpc;
        }

        return exporter;
    }

    private sealed class NodeResourceDetector(string serviceName, NodeState node) : IResourceDetector
    {
        public Resource Detect() => new([
            new KeyValuePair<string, object>("service.name", serviceName),
            new KeyValuePair<string, object>("service.instance.id", node.Id.ToString()),
        ]);
    }
}

/// <summary>
/// Forwards to the export processor only the spans of one node. A composite, so the SDK hands the
/// provider (and with it the node's resource) down to the exporter it wraps.
/// </summary>
internal sealed class NodeSpanFilter(string nodeId, BaseProcessor<Activity> exporter) : CompositeProcessor<Activity>([exporter])
{
    public override void OnStart(Activity data)
    {
        if (Belongs(data))
        {
            base.OnStart(data);
        }
    }

    public override void OnEnd(Activity data)
    {
        if (Belongs(data))
        {
            base.OnEnd(data);
        }
    }

    private bool Belongs(Activity activity) => activity.GetTagItem(TunnelTracing.NodeTag) as string == nodeId;
}

/// <summary>The node id once the identity is loaded; the metric view reads it (views have no service provider).</summary>
internal sealed class NodeIdentityHolder
{
    public string? Id { get; set; }
}
