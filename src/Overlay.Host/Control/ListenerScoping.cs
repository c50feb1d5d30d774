using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Overlay.Host.Control;

/// <summary>The node's two gRPC listeners.</summary>
internal enum ListenerRole
{
    /// <summary>The node-to-node endpoint.</summary>
    Link,

    /// <summary>The admin and application endpoint.</summary>
    Control,

    /// <summary>The optional plaintext probe endpoint: health checks only.</summary>
    Health,
}

/// <summary>Set on every connection a listener accepts, so a request knows which listener it came through.</summary>
internal sealed class ListenerRoleFeature(ListenerRole role)
{
    public ListenerRole Role { get; } = role;
}

/// <summary>Endpoint metadata: the only listener that serves the endpoint (none: both, as health checks).</summary>
internal sealed class ServedOnAttribute(ListenerRole role) : Attribute
{
    public ListenerRole Role { get; } = role;
}

/// <summary>
/// Keeps the Link service off the control endpoint and the Control service off the link endpoint.
/// Every connection is tagged with the listener that accepted it (so port 0 and any address
/// work: the tag is what Kestrel bound, seen at request time); a request for a service the
/// listener does not serve, or that arrives through a listener the node did not set up, is answered
/// as a gRPC server answers an unknown service.
/// </summary>
internal static class ListenerScoping
{
    public static void Tag(ListenOptions listen, ListenerRole role) => listen.Use(next => connection =>
    {
        connection.Features.Set(new ListenerRoleFeature(role));
        return next(connection);
    });

    public static void UseListenerScoping(this WebApplication app) => app.Use((context, next) =>
    {
        var endpoint = context.GetEndpoint();
        var servedOn = endpoint?.Metadata.GetMetadata<ServedOnAttribute>();
        var arrivedOn = context.Features.Get<ListenerRoleFeature>();
        if (arrivedOn?.Role == ListenerRole.Health ? IsHealthCheck(endpoint) : servedOn is null || servedOn.Role == arrivedOn?.Role)
        {
            return next(context);
        }

        // A trailers-only gRPC response: Unimplemented, as for a service this server does not have.
        // An untagged listener (one added through Kestrel's own configuration) serves neither: fail closed.
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = "application/grpc";
        context.Response.Headers["grpc-status"] = "12";
        context.Response.Headers["grpc-message"] = arrivedOn is null
            ? "this service is served only on its own endpoint"
            : $"this service is not served on the {arrivedOn.Role.ToString().ToLowerInvariant()} endpoint";
        return Task.CompletedTask;
    });

    // The plaintext probe listener serves this one method and nothing else.
    private static bool IsHealthCheck(Endpoint? endpoint) =>
        endpoint?.Metadata.GetMetadata<Grpc.AspNetCore.Server.GrpcMethodMetadata>() is { } grpc
        && grpc.Method.ServiceName == "grpc.health.v1.Health" && grpc.Method.Name == "Check";
}
