using Grpc.AspNetCore.Server;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Overlay.Errors;
using Overlay.Host.Link;
using Overlay.Host.Options;
using Overlay.Host.Tunnels;

namespace Overlay.Host.Directory;

/// <summary>
/// Rate-limits the unauthenticated directory calls (Exchange, Prove, Join) per source address block
/// (<see cref="PeerAddress.FairnessKey"/>): each can cost signature checks and a sample of the
/// directory, so one source must not be able to keep the node busy. Refused with
/// ResourceExhausted and Busy in the <c>overlay-error</c> trailer. Tunnel hops are not touched.
/// </summary>
internal sealed class DirectoryCallGate : Interceptor
{
    private static readonly string ExchangeMethod = $"/{Protocol.V1.Link.Descriptor.FullName}/Exchange";
    private static readonly string ProveMethod = $"/{Protocol.V1.Link.Descriptor.FullName}/Prove";
    private static readonly string JoinMethod = $"/{Protocol.V1.Link.Descriptor.FullName}/Join";

    private readonly HeaderRateLimiter _limiter;
    private readonly ILogger<DirectoryCallGate> _logger;

    public DirectoryCallGate(IOptions<OverlayOptions> options, TimeProvider time, ILogger<DirectoryCallGate> logger)
    {
        var directory = options.Value.Directory;
        // The header limiter's token bucket per key, a separate instance with the directory's rates.
        _limiter = new HeaderRateLimiter(directory.CallsPerSecondPerSource, directory.CallBurstPerSource, time);
        _logger = logger;
    }

    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        if (context.Method == ExchangeMethod || context.Method == ProveMethod || context.Method == JoinMethod)
        {
            var source = PeerAddress.FairnessKey(context.GetHttpContext().Connection.RemoteIpAddress);
            if (!_limiter.TryAcquire(source))
            {
                DirectoryLog.CallRateExceeded(_logger, context.Method, source);
                throw LinkErrors.Refuse(TunnelErrorKind.Busy);
            }
        }

        return continuation(request, context);
    }
}
