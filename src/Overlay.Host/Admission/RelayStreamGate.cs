using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Overlay.Errors;
using Overlay.Host.Link;
using Overlay.Host.Options;
using Overlay.Host.Telemetry;

namespace Overlay.Host.Admission;

/// <summary>
/// Admits relay streams before the gRPC pipeline: a place among the streams waiting for their header
/// (per fairness key, then in all) and a token of the key's header rate, paced rather than refused
/// when it comes within half the header timeout. A refusal here is a trailers-only gRPC answer
/// written straight to the response: no call context, no handler and no exception, so a flood that
/// is refused costs the node as little as a stream can (measured in the bench's fairness verb).
/// </summary>
internal sealed class RelayStreamGate(LinkAdmission admission, OverlayMetrics metrics, IOptions<OverlayOptions> options, ILogger<RelayStreamGate> logger)
{
    private static readonly string RelayPath = "/" + Protocol.V1.Link.Descriptor.FullName + "/Relay";
    private readonly TimeSpan _maxPace = options.Value.Tunnels.HeaderTimeout / 2;

    public async Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        if (!string.Equals(context.Request.Path.Value, RelayPath, StringComparison.Ordinal))
        {
            await next(context);
            return;
        }

        var source = PeerAddress.FairnessKey(context.Connection.RemoteIpAddress);
        if (!admission.PendingHeaders.TryEnter(source))
        {
            Refuse(context, source, AdmissionLimits.PendingHeaders);
            return;
        }

        PendingHeader? pending = null;
        try
        {
            if (!admission.HeaderRate.TryReserve(source, _maxPace, out var pace))
            {
                admission.PendingHeaders.Exit(source);
                Refuse(context, source, AdmissionLimits.HeaderRate);
                return;
            }

            pending = new PendingHeader(admission.PendingHeaders, source, pace);
            context.Features.Set(pending);
            await next(context);
        }
        finally
        {
            pending?.Release();
        }
    }

    private void Refuse(HttpContext context, string source, string limit)
    {
        admission.Refused(source, limit);
        metrics.HeaderRejected(TunnelErrorKind.Busy);
        Log.HeaderRejected(logger, TunnelErrorKind.Busy.ToTag());
        LinkErrors.WriteRefusal(context.Response, TunnelErrorKind.Busy);
    }
}

/// <summary>Puts <see cref="RelayStreamGate"/> in front of the Link service.</summary>
internal static class RelayStreamGateExtensions
{
    public static void UseRelayStreamGate(this WebApplication app)
    {
        var gate = app.Services.GetRequiredService<RelayStreamGate>();
        app.Use(next => context => gate.InvokeAsync(context, next));
    }
}
