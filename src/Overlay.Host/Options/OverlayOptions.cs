using Microsoft.Extensions.Options;
using Overlay.Onion;
using Overlay.Protocol;

namespace Overlay.Host.Options;

/// <summary>
/// Everything a node is configured with: the <c>Overlay</c> section of appsettings.json, overridable
/// by environment variables (<c>Overlay__Link__Url</c>, ...). Validated at start.
/// </summary>
public sealed class OverlayOptions
{
    /// <summary>The configuration section name.</summary>
    public const string SectionName = "Overlay";

    /// <summary>Where the identity key and onion-key state live. Default: <c>./data</c>.</summary>
    public string DataDirectory { get; set; } = "data";

    /// <summary>The node-to-node endpoint.</summary>
    public LinkEndpointOptions Link { get; set; } = new();

    /// <summary>The network's shared parameters; every node of a network must agree.</summary>
    public NetworkOptions Network { get; set; } = new();

    /// <summary>Onion-key epochs, rotation and the replay cache.</summary>
    public Overlay.Identity.OnionKeyOptions OnionKeys { get; set; } = new();

    /// <summary>Peer discovery and status.</summary>
    public DirectoryOptions Directory { get; set; } = new();

    /// <summary>Tunnel limits and defaults.</summary>
    public TunnelOptions Tunnels { get; set; } = new();

    /// <summary>The control endpoint (admin and application API).</summary>
    public Control.ControlEndpointOptions Control { get; set; } = new();

    /// <summary>Tracing switches and the OTLP endpoint (<c>Overlay:Telemetry</c>).</summary>
    public Telemetry.TelemetryOptions Telemetry { get; set; } = new();
}

/// <summary>The link endpoint: where this node listens for other nodes and how it dials them.</summary>
public sealed class LinkEndpointOptions
{
    /// <summary>The URL Kestrel listens on (HTTP/2 only). Port 0 picks a free port. Default <c>http://127.0.0.1:7400</c>.</summary>
    public string Url { get; set; } = "http://127.0.0.1:7400";

    /// <summary>The URL other nodes dial, if it differs from <see cref="Url"/> (containers, NAT). Default: the bound URL.</summary>
    public string? AdvertisedUrl { get; set; }

    /// <summary>HTTP/2 flow-control window per tunnel hop, each direction. Default 128 KiB; at least 64 KiB.</summary>
    public int StreamWindowBytes { get; set; } = 128 * 1024;

    /// <summary>Concurrent tunnel hops on one HTTP/2 connection before the dialer opens another. Default 256.</summary>
    public int MaxStreamsPerConnection { get; set; } = 256;

    /// <summary>Largest link message accepted, in bytes (a header, or a batch of cells). Default 1 MiB.</summary>
    public int MaxMessageBytes { get; set; } = 1024 * 1024;

    /// <summary>How long dialing a peer may take. Default 5 s.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Idle time before an HTTP/2 keep-alive ping. Default 15 s.</summary>
    public TimeSpan KeepAlivePingDelay { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>How long a ping may go unanswered before the peer is considered dead. Default 10 s.</summary>
    public TimeSpan KeepAlivePingTimeout { get; set; } = TimeSpan.FromSeconds(10);
}

/// <summary>The network parameters, as configured.</summary>
public sealed class NetworkOptions
{
    /// <summary>The maximum relays in a route. Default 32.</summary>
    public int MaxRelays { get; set; } = NetworkParameters.DefaultMaxRelays;

    /// <summary>The cell size in bytes. Default 4096.</summary>
    public int CellSize { get; set; } = NetworkParameters.DefaultCellSize;

    /// <summary>The forward cell construction. Default Baseline.</summary>
    public CellConstruction Construction { get; set; } = CellConstruction.Baseline;

    /// <summary>The longest tunnel deadline a header may carry (a deadline class name). Default Hours6.</summary>
    public DeadlineClass MaxDeadlineClass { get; set; } = DeadlineClass.Hours6;

    /// <summary>No cell either way for this long ends a tunnel at every hop (whole seconds, 1 s to 1 h). Default 2 minutes.</summary>
    public TimeSpan IdleTimeout { get; set; } = NetworkParameters.DefaultIdleTimeout;

    /// <summary>The parameters as the protocol core uses them.</summary>
    public NetworkParameters ToParameters() => new()
    {
        MaxRelays = MaxRelays,
        CellSize = CellSize,
        Construction = Construction,
        MaxDeadlineClass = MaxDeadlineClass,
        IdleTimeout = IdleTimeout,
    };
}

/// <summary>Peer discovery.</summary>
public sealed class DirectoryOptions
{
    /// <summary>Link URLs of nodes to join through.</summary>
    public List<string> Seeds { get; set; } = [];

    /// <summary>How often a node gossips. Default 5 s.</summary>
    public TimeSpan GossipInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Peers contacted per gossip round. Default 3.</summary>
    public int GossipFanout { get; set; } = 3;

    /// <summary>Most descriptors sent or accepted in one exchange. Default 64.</summary>
    public int MaxDescriptorsPerExchange { get; set; } = 64;

    /// <summary>Most peers a node keeps. Default 4096.</summary>
    public int MaxPeers { get; set; } = 4096;

    /// <summary>Consecutive failures after which a peer is down (one makes it suspect). Default 2.</summary>
    public int FailuresBeforeDown { get; set; } = 2;

    /// <summary>A down peer is forgotten after this long without news. Default 10 min.</summary>
    public TimeSpan ForgetDownAfter { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Endpoint proofs run at once. Default 4.</summary>
    public int ConcurrentProofs { get; set; } = 4;

    /// <summary>Deadline of one directory call (exchange, proof). Default 5 s.</summary>
    public TimeSpan CallTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Empty: anyone may join. Otherwise only these node ids (hex) are admitted.</summary>
    public List<string> AllowedNodeIds { get; set; } = [];
}

/// <summary>Tunnel limits and defaults.</summary>
public sealed class TunnelOptions
{
    /// <summary>Tunnels this node serves at once, in any role; beyond it new headers get Busy. Default 10,000.</summary>
    public int MaxActiveTunnels { get; set; } = 10_000;

    /// <summary>Time a peer has to send the header after opening a hop. Default 10 s.</summary>
    public TimeSpan HeaderTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Headers accepted per second from one peer address (token bucket). Default 2,000.</summary>
    public double HeadersPerSecondPerPeer { get; set; } = 2000;

    /// <summary>Burst of the per-peer header bucket. Default 4,000.</summary>
    public int HeaderBurstPerPeer { get; set; } = 4000;

    /// <summary>Default tunnel deadline when the caller names none. Default 30 s.</summary>
    public TimeSpan DefaultDeadline { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Fresh routes tried after a failure before any payload left the origin. Default 2.</summary>
    public int MaxRetries { get; set; } = 2;

    /// <summary>Random spread around a requested relay count, as in the origin project (0 = exact). Default 0.</summary>
    public int RelaySpread { get; set; }

    /// <summary>On shutdown, how long open tunnels may take to finish before the node stops anyway. Default 20 s.</summary>
    public TimeSpan DrainTimeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>Cells batched into one link message at most. Default 8.</summary>
    public int MaxCellsPerMessage { get; set; } = 8;
}

/// <summary>Checks <see cref="OverlayOptions"/> at start, with messages that say what to change.</summary>
internal sealed class OverlayOptionsValidator : IValidateOptions<OverlayOptions>
{
    public ValidateOptionsResult Validate(string? name, OverlayOptions options)
    {
        var failures = new List<string>();
        if (!Uri.TryCreate(options.Link.Url, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https"))
        {
            failures.Add($"Overlay:Link:Url must be an absolute http or https URL, not '{options.Link.Url}'");
        }

        if (options.Link.AdvertisedUrl is { } advertised && (!Uri.TryCreate(advertised, UriKind.Absolute, out var a) || a.Scheme is not ("http" or "https") || a.Port == 0))
        {
            failures.Add($"Overlay:Link:AdvertisedUrl must be an absolute http or https URL with a port, not '{advertised}'");
        }

        if (options.Link.StreamWindowBytes is < 65_535 or > 16 * 1024 * 1024)
        {
            failures.Add("Overlay:Link:StreamWindowBytes must be between 65535 and 16 MiB");
        }

        if (options.Link.MaxStreamsPerConnection is < 1 or > 4096)
        {
            failures.Add("Overlay:Link:MaxStreamsPerConnection must be between 1 and 4096");
        }

        var network = options.Network.ToParameters();
        if (network.Validate() is { } problem)
        {
            failures.Add($"Overlay:Network: {problem}");
        }
        else if (options.Link.MaxMessageBytes < LinkLimits.LargestMessage(network, options.Tunnels.MaxCellsPerMessage))
        {
            failures.Add($"Overlay:Link:MaxMessageBytes must hold a header plus Overlay:Tunnels:MaxCellsPerMessage cells in one message: at least {LinkLimits.LargestMessage(network, options.Tunnels.MaxCellsPerMessage)} bytes");
        }

        if (network.Validate() is null && DeadlineClasses.FromTimeSpan(options.Tunnels.DefaultDeadline) > network.MaxDeadlineClass)
        {
            failures.Add($"Overlay:Tunnels:DefaultDeadline ({options.Tunnels.DefaultDeadline}) must fit Overlay:Network:MaxDeadlineClass ({network.MaxDeadlineClass.ToTimeSpan()})");
        }

        if (options.OnionKeys.Validate() is { } keys)
        {
            failures.Add($"Overlay:OnionKeys: {keys}");
        }

        foreach (var seed in options.Directory.Seeds)
        {
            if (!Uri.TryCreate(seed, UriKind.Absolute, out var s) || s.Scheme is not ("http" or "https"))
            {
                failures.Add($"Overlay:Directory:Seeds: '{seed}' is not an absolute http or https URL");
            }
        }

        foreach (var id in options.Directory.AllowedNodeIds)
        {
            if (!Identity.NodeId.TryParse(id, out _))
            {
                failures.Add($"Overlay:Directory:AllowedNodeIds: '{id}' is not a 64-hex-digit node id");
            }
        }

        if (options.Directory.GossipFanout < 1 || options.Directory.MaxDescriptorsPerExchange < 1 || options.Directory.MaxPeers < 1
            || options.Directory.ConcurrentProofs < 1 || options.Directory.FailuresBeforeDown < 1)
        {
            failures.Add("Overlay:Directory: fan-out, descriptors per exchange, peers, concurrent proofs and failures before down must be at least 1");
        }

        if (options.Tunnels.MaxActiveTunnels < 1 || options.Tunnels.HeadersPerSecondPerPeer <= 0 || options.Tunnels.HeaderBurstPerPeer < 1
            || options.Tunnels.MaxRetries < 0 || options.Tunnels.RelaySpread < 0 || options.Tunnels.MaxCellsPerMessage is < 1 or > 256)
        {
            failures.Add("Overlay:Tunnels: limits must be positive (MaxCellsPerMessage 1..256, MaxRetries and RelaySpread ≥ 0)");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
