using System.Diagnostics;
using Overlay.Crypto;

namespace Overlay.Host.Telemetry;

/// <summary>
/// Where tunnel spans get their parents. By default a hop's spans hang under a trace id and a
/// synthetic parent span id derived from that hop's tunnel key, so only the origin (which holds
/// every hop key) can find and link them; in sealed mode a relay that allows it parents them on
/// the context the origin sealed into its layer, and the round trip is one trace.
/// </summary>
internal static class TunnelTracing
{
    /// <summary>Tag on every span this project starts: which node in the process it belongs to.</summary>
    public const string NodeTag = "overlay.node.id";

    /// <summary>Tag: the last phase a tunnel reached, set when it fails or times out.</summary>
    public const string LastPhaseTag = "overlay.tunnel.last_phase";

    // The sealed field: version (1) | trace id (16) | span id (8) | flags (1) | zero (6).
    private const byte SealedVersion = 1;

    public static ActivityContext HopParent(HopTraceContext context) => new(
        ActivityTraceId.CreateFromBytes(context.TraceId),
        ActivitySpanId.CreateFromBytes(context.SpanId),
        ActivityTraceFlags.Recorded,
        isRemote: true);

    public static void WriteSealed(ActivityContext context, Span<byte> field)
    {
        field.Clear();
        field[0] = SealedVersion;
        context.TraceId.CopyTo(field.Slice(1, 16));
        context.SpanId.CopyTo(field.Slice(17, 8));
        field[25] = (byte)context.TraceFlags;
    }

    public static bool TryReadSealed(ReadOnlySpan<byte> field, out ActivityContext context)
    {
        context = default;
        if (field.Length != 32 || field[0] != SealedVersion)
        {
            return false;
        }

        var traceId = field.Slice(1, 16);
        var spanId = field.Slice(17, 8);
        if (traceId.IndexOfAnyExcept((byte)0) < 0 || spanId.IndexOfAnyExcept((byte)0) < 0)
        {
            return false;
        }

        context = new ActivityContext(ActivityTraceId.CreateFromBytes(traceId), ActivitySpanId.CreateFromBytes(spanId),
            (ActivityTraceFlags)(field[25] & 1), isRemote: true);
        return true;
    }

    /// <summary>Starts a span with an explicit parent (never the ambient one) and this node's tag.</summary>
    public static Activity? Start(string name, ActivityKind kind, ActivityContext parent, string nodeId, DateTimeOffset? startTime = null)
    {
        var activity = OverlayTelemetry.ActivitySource.StartActivity(name, kind, parent, startTime: startTime ?? default);
        activity?.SetTag(NodeTag, nodeId);
        return activity;
    }

    /// <summary>Starts a child phase of <paramref name="parent"/>.</summary>
    public static Activity? StartPhase(string name, Activity? parent, DateTimeOffset? startTime = null)
    {
        if (parent is null)
        {
            return null;
        }

        var activity = OverlayTelemetry.ActivitySource.StartActivity(name, ActivityKind.Internal, parent.Context, startTime: startTime ?? default);
        activity?.SetTag(NodeTag, parent.GetTagItem(NodeTag));
        return activity;
    }

    /// <summary>Ends a span as a failure, recording the typed reason and the last phase reached.</summary>
    public static void Fail(Activity? activity, Errors.TunnelErrorKind kind, string? lastPhase)
    {
        activity.RecordFailure(kind);
        if (lastPhase is not null)
        {
            activity?.SetTag(LastPhaseTag, lastPhase);
        }
    }
}
