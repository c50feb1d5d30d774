using Grpc.Core;
using Overlay.Host.Directory;
using Overlay.Host.Tunnels;
using Overlay.Protocol.V1;

namespace Overlay.Host.Link;

/// <summary>
/// The node-to-node gRPC service: tunnel hops and directory exchanges. Bound by
/// <see cref="StrictLinkMethods"/> (strict request parsing) rather than the generated base class.
/// </summary>
internal sealed class LinkService(TunnelServer tunnels, DirectoryService directory)
{
    public Task Relay(IAsyncStreamReader<LinkMessage> requestStream, IServerStreamWriter<LinkMessage> responseStream, ServerCallContext context) =>
        tunnels.ServeAsync(requestStream, responseStream, context);

    public Task<DescriptorExchange> Exchange(DescriptorExchange request, ServerCallContext context) =>
        Task.FromResult(directory.HandleExchange(request));

    public Task<ProofResponse> Prove(ProofRequest request, ServerCallContext context) =>
        Task.FromResult(directory.HandleProve(request));
}
