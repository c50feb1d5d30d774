using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Overlay.Client.Internal;

namespace Overlay.Client;

/// <summary>Registers <see cref="OverlayClient"/> through the gRPC client factory.</summary>
public static class OverlayClientServiceCollectionExtensions
{
    /// <summary>
    /// Adds <see cref="OverlayClient"/> (and the generated control client beneath it) with
    /// <see cref="OverlayClientOptions"/>, validated when first used. The returned builder
    /// configures the underlying HttpClient further. The channel retries only reads that change
    /// nothing, when the node could not be reached; never Send or OpenTunnel.
    /// </summary>
    public static IHttpClientBuilder AddOverlayClient(this IServiceCollection services, Action<OverlayClientOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = services.AddOptions<OverlayClientOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<OverlayClientOptions>, OverlayClientOptionsValidator>());
        services.TryAddSingleton(sp => new ControlToken(sp.GetRequiredService<IOptions<OverlayClientOptions>>().Value));
        services.TryAddTransient<OverlayClient>();
        return services
            .AddGrpcClient<Protocol.Control.V1.Control.ControlClient>((sp, grpc) => grpc.Address = Options(sp).Endpoint)
            .ConfigurePrimaryHttpMessageHandler(sp => ControlChannel.Handler(Options(sp)))
            .ConfigureChannel((sp, channel) =>
            {
                var overlay = Options(sp);
                channel.MaxReceiveMessageSize = overlay.MaxReceiveMessageBytes;
                channel.ServiceConfig = ControlChannel.ServiceConfig();
                channel.ThrowOperationCanceledOnCancellation = true;
                // A node's control endpoint is plain HTTP only on loopback (it refuses anything else).
                channel.UnsafeUseInsecureChannelCallCredentials = overlay.Endpoint.Scheme == Uri.UriSchemeHttp;
            })
            .AddCallCredentials((_, metadata, sp) =>
            {
                metadata.Add("authorization", $"Bearer {sp.GetRequiredService<ControlToken>().Value}");
                return Task.CompletedTask;
            });
    }

    private static OverlayClientOptions Options(IServiceProvider services) => services.GetRequiredService<IOptions<OverlayClientOptions>>().Value;
}
