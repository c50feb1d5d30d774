using Microsoft.Extensions.Options;
using Overlay.Host.Options;

namespace Overlay.Host.Telemetry;

/// <summary>Checks the <c>Overlay:Telemetry</c> section at start, with messages that say what to change.</summary>
internal sealed class TelemetryOptionsValidator : IValidateOptions<OverlayOptions>
{
    public ValidateOptionsResult Validate(string? name, OverlayOptions options)
    {
        var failures = new List<string>();
        var telemetry = options.Telemetry;

        // Any node can advertise that it honours sealed contexts, colluding ones included: sealing is
        // for networks whose members are known, which today means a directory allow-list.
        if (telemetry.SealTraceContext && options.Directory.AllowedNodeIds.Count == 0)
        {
            failures.Add("Overlay:Telemetry:SealTraceContext needs a network whose membership is controlled: set Overlay:Directory:AllowedNodeIds, "
                + "or turn sealing off (any node may advertise that it honours a sealed trace context)");
        }

        if (telemetry.OtlpEndpoint is { } endpoint && (!Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https")))
        {
            failures.Add($"Overlay:Telemetry:OtlpEndpoint must be an absolute http or https URL, not '{endpoint}'");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
