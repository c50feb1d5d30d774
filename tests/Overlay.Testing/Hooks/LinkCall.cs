namespace Overlay.Testing.Hooks;

/// <summary>
/// One incoming duplex link call (one tunnel hop) as the node that served it saw it: the encoded
/// size of every message it received and of every message it sent back, in order. On the wire each
/// message also has gRPC's fixed 5-byte length prefix.
/// </summary>
internal sealed record LinkCall(string Node, int HeaderBytes, IReadOnlyList<int> RequestSizes, IReadOnlyList<int> ResponseSizes)
{
    /// <summary>Request messages received.</summary>
    public int Messages => RequestSizes.Count;

    /// <summary>Response messages sent.</summary>
    public int Replies => ResponseSizes.Count;
}
