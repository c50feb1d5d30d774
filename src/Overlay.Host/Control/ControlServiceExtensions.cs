using Grpc.AspNetCore.Server;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Overlay.Host.Options;
using Overlay.Host.Tunnels;

namespace Overlay.Host.Control;

/// <summary>Wires the control API into a node: services, the listener, the endpoints.</summary>
internal static class ControlServiceExtensions
{
    /// <summary>Registers the control services and the listening dispatcher as the destination handler.</summary>
    public static void AddOverlayControl(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddSingleton<IValidateOptions<OverlayOptions>, ControlOptionsValidator>();
        services.TryAddSingleton<ControlEndpoint>();
        services.TryAddSingleton(sp =>
        {
            var options = sp.GetRequiredService<IOptions<OverlayOptions>>().Value;
            return ControlTokens.Load(options.Control, options.DataDirectory, sp.GetRequiredService<ILogger<ControlTokens>>());
        });
        services.TryAddSingleton<ControlEvents>();
        services.TryAddSingleton<ControlTunnels>();
        services.TryAddSingleton<ListenerRegistry>();
        services.TryAddSingleton<ITunnelHandler, ListenerDispatcher>();
        services.AddHostedService<ControlStartup>();

        services.AddGrpc().AddServiceOptions<ControlService>(grpc => grpc.Interceptors.Add<ControlAuthInterceptor>());
        // From the validated options, like every other setting, not from raw configuration.
        services.AddOptions<GrpcServiceOptions<ControlService>>().Configure<IOptions<OverlayOptions>>((grpc, overlay) =>
        {
            grpc.MaxReceiveMessageSize = overlay.Value.Control.MaxMessageBytes;
            grpc.MaxSendMessageSize = overlay.Value.Control.MaxMessageBytes;
        });
        services.AddGrpcReflection();
    }

    /// <summary>Adds the control listener to Kestrel, when enabled.</summary>
    public static void ListenControl(KestrelServerOptions kestrel, OverlayOptions options)
    {
        if (options.Control.Enabled)
        {
            kestrel.ApplicationServices.GetRequiredService<ControlEndpoint>().Listen(kestrel, options.Control, options.Link.Url);
        }
    }

    /// <summary>Maps the Control service and reflection onto the control listener only.</summary>
    public static void MapOverlayControl(this WebApplication app)
    {
        if (!app.Services.GetRequiredService<IOptions<OverlayOptions>>().Value.Control.Enabled)
        {
            return;
        }

        app.MapGrpcService<ControlService>().WithMetadata(new ServedOnAttribute(ListenerRole.Control));
        app.MapGrpcReflectionService().WithMetadata(new ServedOnAttribute(ListenerRole.Control));
    }
}

/// <summary>Prepares the control API before the listeners open: the token file, the event sources.</summary>
internal sealed class ControlStartup(IServiceProvider services, ControlEndpoint endpoint, IOptions<OverlayOptions> options, TimeProvider time,
    IHostApplicationLifetime lifetime, ILogger<ControlStartup> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        endpoint.StartedAt = time.GetUtcNow();
        if (options.Value.Control.Enabled)
        {
            endpoint.TokenFile = services.GetRequiredService<ControlTokens>().OperatorTokenPath;
            lifetime.ApplicationStarted.Register(() => ControlLog.Listening(logger, endpoint.Url.ToString()));
        }

        services.GetRequiredService<ControlEvents>();
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
