using System.Diagnostics;
using System.Security.Cryptography;
using Overlay.Crypto;
using Overlay.Identity;

namespace Overlay.Host.Telemetry;

/// <summary>
/// Where tunnel spans get their parents. By default a hop's spans hang under a trace id and a
/// synthetic parent span id derived from that hop's tunnel key, so only the origin (which holds
/// every hop key) can find and link them; in sealed mode a relay that allows it parents them on
/// the context the origin sealed into its layer (a fresh random root per tunnel), and the hops that
/// allow it share one trace.
/// </summary>
internal static class TunnelTracing
{
    /// <summary>Tag on every span this project starts: which node in the process it belongs to.</summary>
    public const string NodeTag = "overlay.node.id";

    /// <summary>Tag: the last phase a tunnel reached, set when it fails or times out.</summary>
    public const string LastPhaseTag = "overlay.tunnel.last_phase";

    /// <summary>Tag on the origin's link to its tunnel's sealed root (the other links are the hops' private traces).</summary>
    public const string SealedLinkTag = "overlay.trace.sealed";

    // The sealed field: version (1) | trace id (16) | span id (8) | flags (1) | zero (6).
    private const byte SealedVersion = 1;
    private const int SealedSize = 32;

    public static ActivityContext HopParent(HopTraceContext context) => new(
        ActivityTraceId.CreateFromBytes(context.TraceId),
        ActivitySpanId.CreateFromBytes(context.SpanId),
        ActivityTraceFlags.Recorded,
        isRemote: true);

    /// <summary>
    /// A fresh root for one tunnel's sealed trace: trace and span ids from the CSPRNG, never derived
    /// from the ambient Activity, so no id a caller (an application, a control call's traceparent)
    /// chose or knows leaves the node in a header. ActivityTraceId.CreateRandom is not used: it
    /// draws from a fast non-cryptographic generator.
    /// </summary>
    public static ActivityContext NewSealedRoot()
    {
        Span<byte> ids = stackalloc byte[24];
        RandomNumberGenerator.Fill(ids);
        return new ActivityContext(ActivityTraceId.CreateFromBytes(ids[..16]), ActivitySpanId.CreateFromBytes(ids[16..]), ActivityTraceFlags.Recorded);
    }

    /// <summary>
    /// The sealed contexts of a header: <paramref name="root"/> in the slot of each hop whose
    /// descriptor advertises that it honours one, zero bytes (no sealed context) in the others.
    /// </summary>
    public static byte[] SealFor(IReadOnlyList<NodeDescriptor> route, ActivityContext root)
    {
        var contexts = new byte[route.Count * SealedSize];
        for (var hop = 0; hop < route.Count; hop++)
        {
            if (route[hop].Features.HasFlag(DescriptorFeatures.SealedTraceContext))
            {
                WriteSealed(root, contexts.AsSpan(hop * SealedSize, SealedSize));
            }
        }

        return contexts;
    }

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
        if (field.Length != SealedSize || field[0] != SealedVersion)
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
