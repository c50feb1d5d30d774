using System.Reflection;
using Grpc.Core;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Overlay.Host.Directory;
using Overlay.Host.Keys;
using Overlay.Host.Options;
using Overlay.Host.Tunnels;
using Overlay.Identity;
using V1 = Overlay.Protocol.Control.V1;

namespace Overlay.Host.Control;

/// <summary>
/// The Control gRPC service. Every call has passed <see cref="ControlAuthInterceptor"/>. Bad
/// requests end with InvalidArgument or NotFound before anything is opened; tunnel failures end
/// with the status of their kind and the failing hop; nothing a caller does here affects other
/// tunnels.
/// </summary>
internal sealed partial class ControlService(
    NodeState node,
    PeerDirectory directory,
    DirectoryService directoryService,
    TunnelClient tunnelClient,
    TunnelRegistry registry,
    OnionKeyService keys,
    ControlTunnels tunnels,
    ControlEvents events,
    ListenerRegistry listeners,
    ControlEndpoint endpoint,
    Replies.ReplyBlockStore replies,
    Membership.MembershipBook memberships,
    Membership.MembershipAuthority authority,
    IOptions<OverlayOptions> options,
    TimeProvider time,
    IHostApplicationLifetime lifetime,
    ILogger<ControlService> logger) : V1.Control.ControlBase
{
    private const int DefaultRelays = 3;
    private static readonly string Version = typeof(ControlService).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0";
    private static readonly TimeSpan LongestDeadline = TimeSpan.FromHours(6);
    private readonly OverlayOptions _options = options.Value;
    private ControlEndpointOptions Control => _options.Control;

    /// <summary>
    /// Runs a stream that lasts as long as the client likes (Listen, WatchEvents, WatchPeers)
    /// until the call ends or the node begins to stop; then it ends with Unavailable, so Kestrel's
    /// shutdown does not wait on it.
    /// </summary>
    private async Task UntilStoppingAsync(ServerCallContext context, Func<CancellationToken, Task> stream)
    {
        var stopping = lifetime.ApplicationStopping;
        using var call = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, stopping);
        try
        {
            await stream(call.Token);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested && !context.CancellationToken.IsCancellationRequested)
        {
            throw ShuttingDown();
        }

        if (stopping.IsCancellationRequested && !context.CancellationToken.IsCancellationRequested)
        {
            throw ShuttingDown();
        }
    }

    private static RpcException ShuttingDown() =>
        ControlErrors.Error(StatusCode.Unavailable, "shutting_down", "the node is shutting down; reconnect to it (or another node) once it is back");

    private static NodeId ParseNodeId(string value, string field) =>
        NodeId.TryParse(value, out var id) && !id.IsNone
            ? id
            : throw ControlErrors.InvalidArgument($"{field} '{(value.Length > 80 ? value[..80] + "..." : value)}' is not a node id (64 hex digits)");
}
