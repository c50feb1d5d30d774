using System.Security.Cryptography;

namespace Overlay.Crypto;

/// <summary>
/// A hop's private trace coordinates: a 16-byte trace id and an 8-byte parent span id derived from
/// the hop's tunnel key (<c>HKDF-Expand(trace key, "overlay/v1 trace context", 24)</c>). Only the
/// hop and the origin, which holds every hop key, can compute them, so the origin can link to
/// every hop's spans while no one else can tie two hops' traces together.
/// </summary>
public readonly record struct HopTraceContext
{
    /// <summary>The size of the trace id.</summary>
    public const int TraceIdSize = 16;

    /// <summary>The size of the span id.</summary>
    public const int SpanIdSize = 8;

    private readonly byte[] _bytes;

    private HopTraceContext(byte[] bytes) => _bytes = bytes;

    /// <summary>The W3C trace id bytes (never all zero).</summary>
    public ReadOnlySpan<byte> TraceId => _bytes.AsSpan(0, TraceIdSize);

    /// <summary>The synthetic parent span id bytes (never all zero).</summary>
    public ReadOnlySpan<byte> SpanId => _bytes.AsSpan(TraceIdSize, SpanIdSize);

    internal static ReadOnlySpan<byte> Label => "overlay/v1 trace context"u8;

    internal static HopTraceContext Derive(ReadOnlySpan<byte> traceKey)
    {
        var bytes = new byte[TraceIdSize + SpanIdSize];
        HKDF.Expand(HashAlgorithmName.SHA256, traceKey, bytes, Label);
        // W3C forbids all-zero ids; the chance is 2^-64, but the rule is cheap to keep.
        if (bytes.AsSpan(0, TraceIdSize).IndexOfAnyExcept((byte)0) < 0)
        {
            bytes[TraceIdSize - 1] = 1;
        }

        if (bytes.AsSpan(TraceIdSize).IndexOfAnyExcept((byte)0) < 0)
        {
            bytes[^1] = 1;
        }

        return new HopTraceContext(bytes);
    }
}
