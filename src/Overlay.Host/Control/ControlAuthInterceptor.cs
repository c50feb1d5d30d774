using System.Security.Cryptography;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Overlay.Host.Options;

namespace Overlay.Host.Control;

/// <summary>The authenticated caller of a control call.</summary>
/// <param name="Role">What the token grants.</param>
/// <param name="Name">The client, for limits and ownership: the role, or the client certificate with mTLS.</param>
public sealed record ControlCaller(ControlRole Role, string Name)
{
    /// <summary>The token's name (operator, application, or the application's name), without a certificate's mark.</summary>
    public string Token { get; init; } = Name;

    internal const string Key = "overlay.control.caller";

    internal static ControlCaller Of(ServerCallContext context) => (ControlCaller)context.UserState[Key];
}

/// <summary>
/// Authenticates every Control call: a bearer token (constant-time comparison), plus the client
/// certificate with mTLS; operator-only methods refuse application tokens. Health and reflection
/// are other services and never pass through here.
/// </summary>
internal sealed class ControlAuthInterceptor(ControlTokens tokens, IOptions<OverlayOptions> options, ILogger<ControlAuthInterceptor> logger) : Interceptor
{
    // An allow-list: a method added later is operator-only until someone decides otherwise.
    private static readonly HashSet<string> ApplicationAllowed = new(StringComparer.Ordinal)
    {
        "/overlay.v1.Control/GetInfo",
        "/overlay.v1.Control/GetStats",
        "/overlay.v1.Control/ListPeers",
        "/overlay.v1.Control/WatchPeers",
        "/overlay.v1.Control/OpenTunnel",
        "/overlay.v1.Control/Send",
        "/overlay.v1.Control/SendReply",
        "/overlay.v1.Control/AwaitReply",
        "/overlay.v1.Control/ListTunnels",
        "/overlay.v1.Control/CloseTunnel",
        "/overlay.v1.Control/Listen",
        "/overlay.v1.Control/Accept",
        "/overlay.v1.Control/Ping",
        "/overlay.v1.Control/WatchEvents",
    };

    private readonly ControlEndpointOptions _options = options.Value.Control;
    private readonly HashSet<string> _allowedCertificates = new(options.Value.Control.AllowedClientCertificates, StringComparer.OrdinalIgnoreCase);

    // Certificates that identify a named application (Overlay:Control:Applications:<name>:ClientCertificate).
    private readonly Dictionary<string, string> _applicationCertificates = options.Value.Control.Applications
        .Where(a => a.Value.ClientCertificate is not null)
        .ToDictionary(a => a.Value.ClientCertificate!, a => a.Key, StringComparer.OrdinalIgnoreCase);

    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        Authorize(context);
        return continuation(request, context);
    }

    public override Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, ServerCallContext context,
        ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Authorize(context);
        return continuation(requestStream, context);
    }

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context,
        ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Authorize(context);
        return continuation(request, responseStream, context);
    }

    public override Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream,
        ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Authorize(context);
        return continuation(requestStream, responseStream, context);
    }

    private void Authorize(ServerCallContext context)
    {
        var header = context.RequestHeaders.GetValue("authorization");
        if (string.IsNullOrEmpty(header))
        {
            throw Refuse(context, StatusCode.Unauthenticated, "missing_token",
                $"missing token: send 'authorization: Bearer <token>' (the operator token is in {tokens.OperatorTokenPath} on the node; overlay --token-file)");
        }

        const string Scheme = "Bearer ";
        var match = header.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase) ? tokens.Match(header.AsSpan(Scheme.Length).Trim()) : null;
        if (match is not { Role: var role, Name: var name })
        {
            throw Refuse(context, StatusCode.Unauthenticated, "bad_token",
                $"bad token: it is not valid for this node (a generated token changes at every start; read {tokens.OperatorTokenPath} again)");
        }

        var tokenName = name;
        if (_options.RequireClientCertificate)
        {
            var certificate = context.GetHttpContext().Connection.ClientCertificate;
            var thumbprint = certificate?.GetCertHashString(HashAlgorithmName.SHA256);
            if (thumbprint is not null && role == ControlRole.Application && _applicationCertificates.TryGetValue(thumbprint, out var application))
            {
                // The certificate names the application; a token may only be its own or the shared one.
                if (name != application && name != ControlTokens.ApplicationName)
                {
                    throw Refuse(context, StatusCode.PermissionDenied, "not_permitted",
                        $"client certificate {thumbprint} identifies application '{application}', but the token is another application's");
                }

                name = application;
                tokenName = application;
            }
            else if (thumbprint is null || !_allowedCertificates.Contains(thumbprint))
            {
                throw Refuse(context, StatusCode.PermissionDenied, "not_permitted",
                    $"client certificate {thumbprint ?? "(none)"} is not in Overlay:Control:AllowedClientCertificates nor an application's ClientCertificate");
            }
            else
            {
                name = $"{name}:{thumbprint[..16].ToLowerInvariant()}";
            }
        }

        if (role != ControlRole.Operator && !ApplicationAllowed.Contains(context.Method))
        {
            throw Refuse(context, StatusCode.PermissionDenied, "not_permitted",
                $"{context.Method} needs the operator token; this caller holds the application token");
        }

        context.UserState[ControlCaller.Key] = new ControlCaller(role, name) { Token = tokenName };
    }

    private RpcException Refuse(ServerCallContext context, StatusCode code, string reason, string detail)
    {
        ControlLog.CallRefused(logger, context.Method, reason);
        return ControlErrors.Error(code, reason, detail);
    }
}
