namespace Overlay.Identity;

/// <summary>Optional abilities a node announces in its descriptor (a 32-bit set; unknown bits are ignored).</summary>
[Flags]
public enum DescriptorFeatures : uint
{
    /// <summary>No optional feature.</summary>
    None = 0,

    /// <summary>The node's configuration lets it honour a trace context the origin sealed in its layer.</summary>
    SealedTraceContext = 1 << 0,
}
