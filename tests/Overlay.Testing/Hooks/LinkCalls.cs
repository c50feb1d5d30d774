using Grpc.Core;

namespace Overlay.Testing.Hooks;

/// <summary>Tells the node's Link service calls from its other gRPC calls (the control API).</summary>
internal static class LinkCalls
{
    private static readonly string Prefix = "/" + Protocol.V1.Link.Descriptor.FullName + "/";

    public static bool IsLink(ServerCallContext context) => context.Method.StartsWith(Prefix, StringComparison.Ordinal);
}
