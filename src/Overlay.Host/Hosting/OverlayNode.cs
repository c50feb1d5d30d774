using System.Diagnostics;
using System.Net;
using Grpc.AspNetCore.HealthChecks;
using Grpc.AspNetCore.Server;
using Grpc.AspNetCore.Server.Model;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Overlay.Host.Admission;
using Overlay.Host.Control;
using Overlay.Host.Directory;
using Overlay.Host.Keys;
using Overlay.Host.Link;
using Overlay.Host.Link.Tls;
using Overlay.Host.Membership;
using Overlay.Host.Options;
using Overlay.Host.Replies;
using Overlay.Host.Telemetry;
using Overlay.Host.Tunnels;
using Overlay.Identity;

namespace Overlay.Host;

/// <summary>How to build one node: the one builder Program, the devnet, the tests and the benchmarks share.</summary>
public sealed class OverlayNodeSettings
{
    /// <summary>Command-line arguments (configuration overrides such as <c>--Overlay:Link:Url=...</c>).</summary>
    public string[] Args { get; init; } = [];

    /// <summary>Configuration values that override appsettings.json and the environment (devnet, tests).</summary>
    public IReadOnlyDictionary<string, string?> Configuration { get; init; } = new Dictionary<string, string?>();

    /// <summary>Extra services (tests replace the tunnel handler, add observers...).</summary>
    public Action<IServiceCollection>? ConfigureServices { get; init; }

    /// <summary>Extra middleware, added before the endpoints.</summary>
    public Action<WebApplication>? ConfigureApplication { get; init; }

    /// <summary>Logging setup; the default is the host's (console, appsettings levels).</summary>
    public Action<ILoggingBuilder>? ConfigureLogging { get; init; }
}

/// <summary>
/// One Overlay node: a Kestrel web host serving the Link service over HTTP/2, with its identity,
/// onion keys, directory and tunnel client.
/// </summary>
public sealed class OverlayNode : IAsyncDisposable
{
    private OverlayNode(WebApplication app) => App = app;

    /// <summary>The ASP.NET Core application.</summary>
    public WebApplication App { get; }

    /// <summary>The node's services.</summary>
    public IServiceProvider Services => App.Services;

    /// <summary>Identity, keys and descriptor.</summary>
    public NodeState State => Services.GetRequiredService<NodeState>();

    /// <summary>The node id.</summary>
    public NodeId Id => State.Id;

    /// <summary>The link endpoint (after start).</summary>
    public Uri LinkEndpoint => State.LinkEndpoint ?? throw new InvalidOperationException("the node has not started");

    /// <summary>Opens tunnels from this node.</summary>
    public TunnelClient Tunnels => Services.GetRequiredService<TunnelClient>();

    /// <summary>The peers this node knows.</summary>
    public PeerDirectory Directory => Services.GetRequiredService<PeerDirectory>();

    /// <summary>The control endpoint: its bound URL and the operator token's file (after start).</summary>
    public ControlEndpoint Control => Services.GetRequiredService<ControlEndpoint>();

    /// <summary>The plaintext health-only listener (<c>Overlay:Link:HealthUrl</c>); its URL is null when not configured.</summary>
    public HealthListener Health => Services.GetRequiredService<HealthListener>();

    /// <summary>Open tunnel counts.</summary>
    public TunnelRegistry Registry => Services.GetRequiredService<TunnelRegistry>();

    /// <summary>
    /// What a stop may take beyond the drain: the key save, ending the control streams, Kestrel
    /// closing its connections (and aborting tunnels the drain left open), the other services.
    /// A fixed margin, since none of it waits on a peer.
    /// </summary>
    public static readonly TimeSpan ShutdownMargin = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The host's shutdown timeout for a drain bound of <paramref name="drainTimeout"/>: the drain
    /// plus <see cref="ShutdownMargin"/>. The default 30 s would cut a longer drain short, and the
    /// supervisor's grace period (compose, Kubernetes) must exceed this, or the node is killed
    /// mid-stop.
    /// </summary>
    public static TimeSpan ShutdownTimeout(TimeSpan drainTimeout) => (drainTimeout > TimeSpan.Zero ? drainTimeout : TimeSpan.Zero) + ShutdownMargin;

    /// <summary>Builds a node; nothing listens until <see cref="StartAsync"/>.</summary>
    public static OverlayNode Create(OverlayNodeSettings settings)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            Args = settings.Args,
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.Configuration.AddInMemoryCollection(settings.Configuration);
        builder.WebHost.UseKestrelHttpsConfiguration();
        settings.ConfigureLogging?.Invoke(builder.Logging);
        AddOverlay(builder.Services, builder.Configuration);
        settings.ConfigureServices?.Invoke(builder.Services);
        builder.WebHost.ConfigureKestrel((_, kestrel) => ConfigureKestrel(kestrel, kestrel.ApplicationServices.GetRequiredService<IOptions<OverlayOptions>>().Value));

        var app = builder.Build();
        var nodeId = new Lazy<string>(() => app.Services.GetRequiredService<NodeState>().Id.ToString());
        app.Use((context, next) =>
        {
            // Control API spans come from the web host's own source: tag them with the node they belong to.
            Activity.Current?.SetTag(TunnelTracing.NodeTag, nodeId.Value);
            return next(context);
        });
        settings.ConfigureApplication?.Invoke(app);
        app.UseListenerScoping();
        app.UseLinkRequestLimits();
        app.UseRelayStreamGate();
        app.MapGrpcService<LinkService>().WithMetadata(new ServedOnAttribute(ListenerRole.Link));
        // The link endpoint offers Check (the kubelet's probe) but not Watch: a stream that never ends, for anyone who connects.
        app.MapGrpcHealthChecksService().Add(endpoint =>
        {
            if (endpoint.Metadata.OfType<GrpcMethodMetadata>().Any(m => m.Method.Name == "Watch"))
            {
                endpoint.Metadata.Add(new ServedOnAttribute(ListenerRole.Control));
            }
        });
        app.MapOverlayControl();
        var node = new OverlayNode(app);
        app.Lifetime.ApplicationStarted.Register(node.OnStarted);
        return node;
    }

    /// <summary>Starts listening, publishes the descriptor and joins the network.</summary>
    public Task StartAsync(CancellationToken cancellationToken = default) => App.StartAsync(cancellationToken);

    /// <summary>Stops gracefully: open tunnels get <c>Overlay:Tunnels:DrainTimeout</c>, the whole stop <see cref="ShutdownTimeout"/>.</summary>
    public Task StopAsync(CancellationToken cancellationToken = default) => App.StopAsync(cancellationToken);

    /// <summary>Stops at once, aborting every connection, as a crash would look to the peers.</summary>
    public async Task KillAsync()
    {
        using var now = new CancellationTokenSource();
        await now.CancelAsync();
        var stop = App.StopAsync(now.Token);
        await stop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        // Cancellation is the point (no grace for anything); any other failure is real.
        if (stop.IsFaulted && stop.Exception.InnerExceptions.Any(e => e is not OperationCanceledException))
        {
            await stop;
        }
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => App.DisposeAsync(); // the container disposes the node state and its keys

    private void OnStarted()
    {
        var options = Services.GetRequiredService<IOptions<OverlayOptions>>().Value;
        var bound = Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var endpoint = new Uri(options.Link.AdvertisedUrl ?? bound);
        State.LinkEndpoint = endpoint;
        State.Publish(Services.GetRequiredService<TimeProvider>().GetUtcNow());
        var logger = Services.GetRequiredService<ILogger<OverlayNode>>();
        Log.NodeListening(logger, Id.ToString(), endpoint.ToString());
        if (endpoint.Scheme == Uri.UriSchemeHttp && !endpoint.IsLoopback)
        {
            Log.CleartextBeyondLoopback(logger, endpoint.ToString());
        }
    }

    private static void AddOverlay(IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<OverlayOptions>().Bind(configuration.GetSection(OverlayOptions.SectionName)).PostConfigure(OverlayOptionsDefaults.Apply).ValidateOnStart();
        services.AddSingleton<IValidateOptions<OverlayOptions>, OverlayOptionsValidator>();
        services.AddSingleton<IValidateOptions<OverlayOptions>, TelemetryOptionsValidator>();
        services.AddSingleton<IValidateOptions<OverlayOptions>, ReplyOptionsValidator>();
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton(sp =>
        {
            var options = sp.GetRequiredService<IOptions<OverlayOptions>>().Value;
            var state = new NodeState(NodeIdentity.LoadOrCreate(options.DataDirectory), options.Network.ToParameters(), options.Telemetry.AdvertisedFeatures);
            if (sp.GetService<NodeIdentityHolder>() is { } holder)
            {
                holder.Id = state.Id.ToString();
            }

            return state;
        });
        services.AddSingleton<MembershipBook>();
        services.AddSingleton<MembershipAuthority>();
        services.AddHostedService<MembershipRenewal>();
        services.AddSingleton(sp => new PeerDirectory(sp.GetRequiredService<NodeState>(), sp.GetRequiredService<IOptions<OverlayOptions>>(),
            sp.GetRequiredService<PeerChannels>(), sp.GetRequiredService<MembershipBook>(), sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<PeerDirectory>>()));
        services.AddSingleton(sp => new RouteSelector(sp.GetRequiredService<PeerDirectory>(), sp.GetRequiredService<NodeState>(), sp.GetRequiredService<IOptions<OverlayOptions>>(), sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton(sp => new TunnelRegistry(sp.GetRequiredService<IOptions<OverlayOptions>>().Value.Tunnels.MaxActiveTunnels));
        services.AddSingleton(sp => new LinkCertificateIssuer(sp.GetRequiredService<NodeState>().Identity,
            sp.GetRequiredService<IOptions<OverlayOptions>>().Value.Link.CertificateRotation, sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<LinkCertificateIssuer>>()));
        services.AddSingleton<IncomingLinks>();
        services.AddSingleton<LinkPeerVerifier>();
        services.AddSingleton<HealthListener>();
        services.AddSingleton<PeerChannels>();
        services.AddSingleton<OverlayMetrics>();
        services.AddSingleton(sp => sp.GetRequiredService<IOptions<OverlayOptions>>().Value.Telemetry);
        services.AddOverlayTelemetry(configuration);
        services.AddSingleton<AdmissionMetrics>();
        services.AddSingleton<LinkAdmission>();
        services.AddSingleton<RelayStreamGate>();
        services.AddSingleton<TunnelServer>();
        services.AddSingleton<ReplyBlockStore>();
        services.AddSingleton(sp => new TunnelClient(sp.GetRequiredService<NodeState>(), sp.GetRequiredService<RouteSelector>(), sp.GetRequiredService<PeerDirectory>(),
            sp.GetRequiredService<PeerChannels>(), sp.GetRequiredService<TunnelRegistry>(), sp.GetRequiredService<OverlayMetrics>(),
            sp.GetRequiredService<IOptions<OverlayOptions>>(), sp.GetRequiredService<TelemetryOptions>(), sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<TunnelClient>>()));
        // Incoming tunnels go to a listening application, else to the echo handler.
        services.TryAddSingleton<ITunnelHandler, ListenerDispatcher>();
        // The keys before the drain: the host runs "stopping" in reverse order, so they are saved right after the drain.
        services.AddSingleton<OnionKeyService>();
        services.AddHostedService(sp => sp.GetRequiredService<OnionKeyService>());
        services.AddHostedService<DrainService>();
        services.AddOptions<HostOptions>().Configure<IOptions<OverlayOptions>>((host, overlay) => host.ShutdownTimeout = ShutdownTimeout(overlay.Value.Tunnels.DrainTimeout));
        services.AddSingleton<DirectoryService>();
        services.AddHostedService(sp => sp.GetRequiredService<DirectoryService>());
        services.AddGrpc();
        services.AddSingleton<IServiceMethodProvider<LinkService>, StrictLinkMethods>();
        services.AddOptions<GrpcServiceOptions>().Configure<IOptions<OverlayOptions>>((grpc, overlay) =>
        {
            grpc.MaxReceiveMessageSize = overlay.Value.Link.MaxMessageBytes;
            grpc.MaxSendMessageSize = overlay.Value.Link.MaxMessageBytes;
        });
        services.AddSingleton<DirectoryCallGate>();
        services.Configure<Grpc.AspNetCore.Server.GrpcServiceOptions<LinkService>>(link => link.Interceptors.Add<DirectoryCallGate>());
        services.AddGrpcHealthChecks().AddCheck("overlay", () => HealthCheckResult.Healthy());
        services.AddSingleton<NodeHealthCheck>();
        services.AddOverlayControl(configuration);
        services.Configure<HealthCheckServiceOptions>(o =>
        {
            o.Registrations.Clear();
            o.Registrations.Add(new HealthCheckRegistration("overlay", sp => sp.GetRequiredService<NodeHealthCheck>(), HealthStatus.Unhealthy, null));
        });
    }

    private static void ConfigureKestrel(KestrelServerOptions kestrel, OverlayOptions options)
    {
        var link = options.Link;
        var http2 = kestrel.Limits.Http2;
        http2.InitialStreamWindowSize = link.StreamWindowBytes;
        http2.MaxStreamsPerConnection = link.MaxStreamsPerConnection;
        // Kestrel returns connection window only as handlers read: one backpressured tunnel must not starve the others.
        http2.InitialConnectionWindowSize = (int)Math.Min(int.MaxValue, (long)link.MaxStreamsPerConnection * link.StreamWindowBytes);
        http2.KeepAlivePingDelay = link.KeepAlivePingDelay;
        http2.KeepAlivePingTimeout = link.KeepAlivePingTimeout;
        kestrel.Limits.MaxRequestBodySize = null;
        kestrel.AddServerHeader = false;
        // gRPC requests carry a handful of short headers (the control token is the longest): anything
        // near Kestrel's defaults (16 KiB per field, 32 KiB in all) is a peer wasting our memory.
        http2.MaxRequestHeaderFieldSize = 8 * 1024;
        kestrel.Limits.MaxRequestHeadersTotalSize = 16 * 1024;
        kestrel.Limits.MaxRequestHeaderCount = 64;
        // Connection caps are the link listener's own (LinkConnectionLimit): Kestrel's are server-wide,
        // so a flood on the link would shut out the control API too.
        var admission = kestrel.ApplicationServices.GetRequiredService<LinkAdmission>();
        var services = kestrel.ApplicationServices;

        var url = new Uri(link.Url);
        void Http2Only(ListenOptions listen)
        {
            listen.Protocols = HttpProtocols.Http2;
            LinkConnectionLimit.Apply(listen, admission);
            ListenerScoping.Tag(listen, ListenerRole.Link);
            // After the connection cap, so a flood is refused before it costs a handshake.
            if (url.Scheme == Uri.UriSchemeHttps)
            {
                listen.UseHttps(LinkTls.Server(services.GetRequiredService<LinkCertificateIssuer>(), services.GetRequiredService<LinkPeerVerifier>(), link.ConnectTimeout));
            }
        }

        if (IPAddress.TryParse(url.Host.Trim('[', ']'), out var address))
        {
            kestrel.Listen(address, url.Port, Http2Only);
        }
        else if (url.IsLoopback)
        {
            kestrel.ListenLocalhost(url.Port, Http2Only);
        }
        else
        {
            kestrel.ListenAnyIP(url.Port, Http2Only);
        }

        // After the link listener, so the first bound address stays the link's.
        ControlServiceExtensions.ListenControl(kestrel, options);
        services.GetRequiredService<HealthListener>().Listen(kestrel, link.HealthUrl);
    }
}

/// <summary>Healthy once the node has an onion key and a published descriptor, until it starts draining.</summary>
internal sealed class NodeHealthCheck(NodeState node, TunnelRegistry registry) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(
            node.Descriptor is null ? HealthCheckResult.Unhealthy("starting: no descriptor published yet")
            : registry.Draining ? HealthCheckResult.Unhealthy("draining: shutting down")
            : HealthCheckResult.Healthy());
}
