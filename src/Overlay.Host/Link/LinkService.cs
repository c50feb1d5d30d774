using Grpc.Core;
using Overlay.Host.Directory;
using Overlay.Host.Membership;
using Overlay.Host.Tunnels;
using Overlay.Protocol.V1;

namespace Overlay.Host.Link;

/// <summary>
/// The node-to-node gRPC service: tunnel hops and directory exchanges. Bound by
/// <see cref="StrictLinkMethods"/> (strict request parsing) rather than the generated base class.
/// In a private network every call first requires the caller to be a member
/// (<see cref="MembershipBook.RequireCaller"/>), by a membership known here or presented with the call.
/// </summary>
internal sealed class LinkService(TunnelServer tunnels, DirectoryService directory, MembershipBook memberships, MembershipAuthority authority)
{
    public Task Relay(IAsyncStreamReader<LinkMessage> requestStream, IServerStreamWriter<LinkMessage> responseStream, ServerCallContext context)
    {
        memberships.RequireCaller(context, presented: default);
        return tunnels.ServeAsync(requestStream, responseStream, context);
    }

    public Task<DescriptorExchange> Exchange(DescriptorExchange request, ServerCallContext context)
    {
        memberships.RequireCaller(context, request.SelfMembership.Span);
        return Task.FromResult(directory.HandleExchange(request));
    }

    public Task<ProofResponse> Prove(ProofRequest request, ServerCallContext context)
    {
        memberships.RequireCaller(context, request.Membership.Span);
        return Task.FromResult(directory.HandleProve(request));
    }

    /// <summary>The one call open to non-members: the authority checks the caller's token or membership itself.</summary>
    public Task<JoinResponse> Join(JoinRequest request, ServerCallContext context) =>
        Task.FromResult(authority.Join(request, context));
}
