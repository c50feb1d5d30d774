using Grpc.Core;
using Microsoft.AspNetCore.Http;
using Overlay.Identity;

namespace Overlay.Host.Link.Tls;

/// <summary>
/// The node id the previous hop proved with its link certificate, set on the connection once its
/// handshake verified (so once per connection, not per call).
/// </summary>
internal sealed class LinkPeerIdentityFeature(NodeId id)
{
    public NodeId Id { get; } = id;
}

/// <summary>Who is calling on the link endpoint: for admission, logging and membership checks.</summary>
internal static class LinkPeerIdentity
{
    /// <summary>The verified node id of the connection this request came on; null on a cleartext link.</summary>
    public static NodeId? Of(HttpContext context) => context.Features.Get<LinkPeerIdentityFeature>()?.Id;

    /// <inheritdoc cref="Of(HttpContext)"/>
    public static NodeId? Of(ServerCallContext context) => context.GetHttpContext() is { } http ? Of(http) : null;
}
