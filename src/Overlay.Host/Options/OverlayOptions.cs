using System.Net;
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

    /// <summary>Private networks: issuing memberships (an authority), joining and renewal.</summary>
    public Membership.MembershipOptions Membership { get; set; } = new();

    /// <summary>Tunnel limits and defaults.</summary>
    public TunnelOptions Tunnels { get; set; } = new();

    /// <summary>The control endpoint (admin and application API).</summary>
    public Control.ControlEndpointOptions Control { get; set; } = new();

    /// <summary>Tracing switches and the OTLP endpoint (<c>Overlay:Telemetry</c>).</summary>
    public Telemetry.TelemetryOptions Telemetry { get; set; } = new();

    /// <summary>Reply blocks: how many this node keeps, how long and how large a reply (<c>Overlay:Replies</c>).</summary>
    public Replies.ReplyOptions Replies { get; set; } = new();
}

/// <summary>The link endpoint: where this node listens for other nodes and how it dials them.</summary>
public sealed class LinkEndpointOptions
{
    /// <summary>
    /// The URL Kestrel listens on (HTTP/2 only). Port 0 picks a free port. https (the default,
    /// <c>https://127.0.0.1:7400</c>): TLS 1.3 with a node certificate each way
    /// (<see cref="Link.Tls.LinkPeerVerifier"/>), and the node dials only https peers. http: cleartext
    /// h2c, unauthenticated, for devnets and tests only (a warning beyond loopback).
    /// </summary>
    public string Url { get; set; } = "https://127.0.0.1:7400";

    /// <summary>True when the link endpoint (and so every link this node dials) uses TLS.</summary>
    public bool UsesTls => Uri.TryCreate(Url, UriKind.Absolute, out var url) && url.Scheme == Uri.UriSchemeHttps;

    /// <summary>
    /// A plaintext (h2c) listener serving only <c>grpc.health.v1.Health/Check</c>, for probes that
    /// cannot speak TLS (the kubelet's gRPC probe), e.g. <c>http://0.0.0.0:7402</c>. Default: none.
    /// </summary>
    public string? HealthUrl { get; set; }

    /// <summary>
    /// How often the link certificate's key is replaced; each certificate is valid for twice this
    /// (plus a backdated hour), so connections made just before a rotation outlive it. Default 1 day;
    /// 1 minute to 6 days.
    /// </summary>
    public TimeSpan CertificateRotation { get; set; } = TimeSpan.FromDays(1);

    /// <summary>The URL other nodes dial, if it differs from <see cref="Url"/> (containers, NAT). Default: the bound URL.</summary>
    public string? AdvertisedUrl { get; set; }

    /// <summary>HTTP/2 flow-control window per tunnel hop, each direction. Default 128 KiB; at least 64 KiB.</summary>
    public int StreamWindowBytes { get; set; } = 128 * 1024;

    /// <summary>Concurrent tunnel hops on one HTTP/2 connection before the dialer opens another. Default 256.</summary>
    public int MaxStreamsPerConnection { get; set; } = 256;

    /// <summary>
    /// Largest link message accepted, in bytes. 0 (the default): the largest legitimate message for
    /// the network's parameters, a header with <see cref="TunnelOptions.MaxCellsPerMessage"/> cells
    /// (<see cref="LinkLimits.LargestMessage"/>); set, it must lie between that and four times it.
    /// Every stream may buffer up to this much before the message is parsed.
    /// </summary>
    public int MaxMessageBytes { get; set; }

    /// <summary>Connections open at once on the link listener (this listener alone). Default 4,096.</summary>
    public int MaxConnections { get; set; } = 4096;

    /// <summary>Connections open at once on the link listener from one fairness key (address block). Default 64.</summary>
    public int MaxConnectionsPerPeer { get; set; } = 64;

    /// <summary>How long dialing a peer may take. Default 5 s.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Idle time before an HTTP/2 keep-alive ping. Default 15 s.</summary>
    public TimeSpan KeepAlivePingDelay { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>How long a ping may go unanswered before the peer is considered dead. Default 10 s.</summary>
    public TimeSpan KeepAlivePingTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// CIDR networks this node may dial although they are not public (loopback, private, shared,
    /// link-local): the devnet, one-host tests, compose and Kubernetes networks. Checked on the
    /// address actually dialed, after name resolution. Default: none.
    /// </summary>
    public List<string> AllowedPeerNetworks { get; set; } = [];

    /// <summary>CIDR networks this node never dials, even when allowed or public. Default: none.</summary>
    public List<string> RefusedPeerNetworks { get; set; } = [];
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

    /// <summary>
    /// The network's authorities: Ed25519 public keys (64 hex digits each) whose signed memberships
    /// admit a node (docs/protocol.md 4.1). Empty (the default): an open network. Set, links must be
    /// TLS, and a node is gossiped, dialed and routed through only with a valid membership.
    /// </summary>
    public List<string> Authorities { get; set; } = [];

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

    /// <summary>
    /// Most peers admitted from one address block (the /24 or /56 their endpoint proof reached; one
    /// address in non-public ranges), so one machine cannot fill the directory. Default 8.
    /// </summary>
    public int MaxPeersPerAddressBlock { get; set; } = 8;

    /// <summary>
    /// A route takes at most one hop from each IPv4 /16 or IPv6 /32, so one party cannot fill a
    /// route. Switch off only where every node shares a block (one host, one container network). Default true.
    /// </summary>
    public bool RouteDiversity { get; set; } = true;

    /// <summary>Exchange and Prove calls accepted per second from one source address block (token bucket). Default 4.</summary>
    public double CallsPerSecondPerSource { get; set; } = 4;

    /// <summary>Burst of the per-source directory call bucket. Default 32.</summary>
    public int CallBurstPerSource { get; set; } = 32;

    /// <summary>
    /// After a failed endpoint proof, that endpoint is not dialed again for <see cref="ProofCooldownInitial"/>,
    /// twice as long after each further failure, up to this cap (gossip repeats dead endpoints); a proof
    /// that succeeds starts it over. Default 2 min.
    /// </summary>
    public TimeSpan ProofCooldown { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>
    /// The cooldown after an endpoint's first failed proof (a peer that was still starting is proved
    /// again soon); each wait carries up to a quarter more of random spread, within <see cref="ProofCooldown"/>. Default 5 s.
    /// </summary>
    public TimeSpan ProofCooldownInitial { get; set; } = TimeSpan.FromSeconds(5);
}

/// <summary>Tunnel limits and defaults.</summary>
public sealed class TunnelOptions
{
    /// <summary>
    /// Tunnels this node serves at once, in any role; beyond it new headers get Busy. Shared fairly
    /// between previous hops (<see cref="Tunnels.TunnelRegistry"/>). Default 10,000.
    /// </summary>
    public int MaxActiveTunnels { get; set; } = 10_000;

    /// <summary>Time a peer has to send the header (and have it processed) after opening a hop. Default 2 s.</summary>
    public TimeSpan HeaderTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// New relay streams served per second from one fairness key (token bucket); past it a stream is
    /// held until the rate allows it, for at most half the header timeout, then refused Busy. Default 2,000.
    /// </summary>
    public double HeadersPerSecondPerPeer { get; set; } = 2000;

    /// <summary>
    /// New relay streams per second for the whole node, split equally between the fairness keys that
    /// used at least a 64th of it over about the last second: a key alone gets up to
    /// <see cref="HeadersPerSecondPerPeer"/>, and while others are busy a flooding key is held to its share. Default 2,000.
    /// </summary>
    public double HeadersPerSecond { get; set; } = 2000;

    /// <summary>Burst of the per-key header bucket: served at once before pacing starts. Default 500.</summary>
    public int HeaderBurstPerPeer { get; set; } = 500;

    /// <summary>Relay streams waiting for their header (or its processing), all keys together. Default 1,024.</summary>
    public int MaxPendingHeaders { get; set; } = 1024;

    /// <summary>Relay streams waiting for their header from one fairness key. Default 256.</summary>
    public int MaxPendingHeadersPerPeer { get; set; } = 256;

    /// <summary>Headers of one fairness key queued for a processing turn; beyond it: Busy. Default 128.</summary>
    public int MaxHeaderQueuePerPeer { get; set; } = 128;

    /// <summary>Headers processed at once (one X25519 agreement each). 0 (the default): one per processor.</summary>
    public int HeaderConcurrency { get; set; }

    /// <summary>The processing concurrency in effect.</summary>
    public int EffectiveHeaderConcurrency => HeaderConcurrency > 0 ? HeaderConcurrency : Environment.ProcessorCount;

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

    /// <summary>Reusable routes: streams multiplexed on one tunnel.</summary>
    public Tunnels.Streams.StreamOptions Streams { get; set; } = new();
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

        if (options.Link.AdvertisedUrl is { } advertised && (!Uri.TryCreate(advertised, UriKind.Absolute, out var a) || !Identity.NodeDescriptor.IsEndpointForm(a)))
        {
            failures.Add($"Overlay:Link:AdvertisedUrl must be scheme://host:port (http or https, an explicit port, no path, query or user info), not '{advertised}'");
        }
        else if (options.Link.AdvertisedUrl is { } sameScheme && url is not null && new Uri(sameScheme).Scheme != url.Scheme)
        {
            failures.Add($"Overlay:Link:AdvertisedUrl must use the scheme of Overlay:Link:Url ({url.Scheme}): peers dial what it says, not '{sameScheme}'");
        }

        if (options.Link.HealthUrl is { } health && (!Uri.TryCreate(health, UriKind.Absolute, out var h) || h.Scheme != Uri.UriSchemeHttp || h.AbsolutePath != "/"))
        {
            failures.Add($"Overlay:Link:HealthUrl must be a plaintext http://host:port URL (the health-only listener), not '{health}'");
        }

        if (!(options.Link.CertificateRotation >= TimeSpan.FromMinutes(1) && options.Link.CertificateRotation <= TimeSpan.FromDays(6)))
        {
            failures.Add($"Overlay:Link:CertificateRotation must be between 1 minute and 6 days, not {options.Link.CertificateRotation}");
        }

        if (options.Link.StreamWindowBytes is < 65_535 or > 16 * 1024 * 1024)
        {
            failures.Add("Overlay:Link:StreamWindowBytes must be between 65535 and 16 MiB");
        }

        if (options.Link.MaxStreamsPerConnection is < 1 or > 4096)
        {
            failures.Add("Overlay:Link:MaxStreamsPerConnection must be between 1 and 4096");
        }

        ValidateNetworks(options.Link.AllowedPeerNetworks, "Overlay:Link:AllowedPeerNetworks", failures);
        ValidateNetworks(options.Link.RefusedPeerNetworks, "Overlay:Link:RefusedPeerNetworks", failures);

        var network = options.Network.ToParameters();
        if (network.Validate() is { } problem)
        {
            failures.Add($"Overlay:Network: {problem}");
        }
        else if (options.Tunnels.MaxCellsPerMessage is >= 1 and <= 256)
        {
            var largest = LinkLimits.LargestMessage(network, options.Tunnels.MaxCellsPerMessage);
            if (options.Link.MaxMessageBytes != 0 && !(options.Link.MaxMessageBytes >= largest && options.Link.MaxMessageBytes <= 4L * largest))
            {
                failures.Add($"Overlay:Link:MaxMessageBytes must hold a header plus Overlay:Tunnels:MaxCellsPerMessage cells in one message: at least {largest} bytes, " +
                    $"and at most four times that ({4L * largest}), since every stream may buffer this much; 0 computes {largest}");
            }
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
            if (!Uri.TryCreate(seed, UriKind.Absolute, out var s) || !Identity.NodeDescriptor.IsEndpointForm(s))
            {
                failures.Add($"Overlay:Directory:Seeds: '{seed}' is not scheme://host:port (http or https, an explicit port, no path, query or user info)");
            }
        }

        foreach (var authority in options.Network.Authorities)
        {
            if (!Identity.NodeId.TryParse(authority, out _))
            {
                failures.Add($"Overlay:Network:Authorities: '{authority}' is not a 64-hex-digit Ed25519 public key");
            }
        }

        if (options.Network.Authorities.Count > 0 && !options.Link.UsesTls)
        {
            failures.Add("Overlay:Network:Authorities needs TLS links (an https Overlay:Link:Url): a membership is checked against the node id the link proves");
        }

        Membership.MembershipOptionsValidation.Validate(options, failures);

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

        if (options.Directory.MaxPeersPerAddressBlock < 1)
        {
            failures.Add("Overlay:Directory:MaxPeersPerAddressBlock must be at least 1");
        }

        if (options.Directory.CallsPerSecondPerSource <= 0 || options.Directory.CallBurstPerSource < 1)
        {
            failures.Add("Overlay:Directory:CallsPerSecondPerSource must be positive and Overlay:Directory:CallBurstPerSource at least 1");
        }

        if (options.Directory.ProofCooldownInitial > options.Directory.ProofCooldown)
        {
            failures.Add($"Overlay:Directory:ProofCooldownInitial must be at most Overlay:Directory:ProofCooldown ({options.Directory.ProofCooldown}), not {options.Directory.ProofCooldownInitial}");
        }

        if (options.Tunnels.MaxActiveTunnels < 1 || options.Tunnels.MaxRetries < 0 || options.Tunnels.RelaySpread < 0 || options.Tunnels.MaxCellsPerMessage is < 1 or > 256)
        {
            failures.Add("Overlay:Tunnels: limits must be positive (MaxCellsPerMessage 1..256, MaxRetries and RelaySpread ≥ 0)");
        }

        failures.AddRange(options.Tunnels.Streams.Validate());
        ValidateAdmission(options, failures);
        ValidateDurations(options, failures);
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static void ValidateNetworks(List<string> networks, string key, List<string> failures)
    {
        foreach (var network in networks)
        {
            // A base address with bits set past the prefix (10.1.2.3/8) is refused, not silently widened: it is likely a typo.
            if (!IPNetwork.TryParse(network, out var parsed) || !IPAddress.TryParse(network.AsSpan(0, network.IndexOf('/')), out var written)
                || !parsed.BaseAddress.Equals(written))
            {
                failures.Add($"{key}: '{network}' is not a CIDR network such as 10.0.0.0/8 or fd00::/8 (no bits set after the prefix)");
            }
        }
    }

    // Written as "not within range" so NaN, which compares false with everything, fails too.
    private static void ValidateAdmission(OverlayOptions options, List<string> failures)
    {
        var tunnels = options.Tunnels;
        var link = options.Link;
        if (!(tunnels.HeadersPerSecondPerPeer > 0 && tunnels.HeadersPerSecondPerPeer <= 1_000_000))
        {
            failures.Add($"Overlay:Tunnels:HeadersPerSecondPerPeer must be a number above 0 and at most 1,000,000, not {tunnels.HeadersPerSecondPerPeer}");
        }

        if (!(tunnels.HeadersPerSecond > 0 && tunnels.HeadersPerSecond <= 1_000_000))
        {
            failures.Add($"Overlay:Tunnels:HeadersPerSecond must be a number above 0 and at most 1,000,000, not {tunnels.HeadersPerSecond}");
        }

        RequireRange(failures, "Overlay:Tunnels:HeaderBurstPerPeer", tunnels.HeaderBurstPerPeer, 1, 1_000_000);
        RequireRange(failures, "Overlay:Tunnels:MaxPendingHeaders", tunnels.MaxPendingHeaders, 1, 1_000_000);
        RequireRange(failures, "Overlay:Tunnels:MaxPendingHeadersPerPeer", tunnels.MaxPendingHeadersPerPeer, 1, tunnels.MaxPendingHeaders);
        RequireRange(failures, "Overlay:Tunnels:MaxHeaderQueuePerPeer", tunnels.MaxHeaderQueuePerPeer, 1, 1_000_000);
        RequireRange(failures, "Overlay:Tunnels:HeaderConcurrency", tunnels.HeaderConcurrency, 0, 1024);
        RequireRange(failures, "Overlay:Link:MaxConnections", link.MaxConnections, 1, 1_000_000);
        RequireRange(failures, "Overlay:Link:MaxConnectionsPerPeer", link.MaxConnectionsPerPeer, 1, link.MaxConnections);
        if (!(tunnels.HeaderTimeout > TimeSpan.Zero && tunnels.HeaderTimeout <= TimeSpan.FromMinutes(1)))
        {
            failures.Add($"Overlay:Tunnels:HeaderTimeout must be above zero and at most one minute, not {tunnels.HeaderTimeout}");
        }
    }

    // Every interval and timeout a node waits on: zero or negative would spin or never wait, and an
    // absurdly long one would hold resources for ever.
    private static void ValidateDurations(OverlayOptions options, List<string> failures)
    {
        RequireDuration(failures, "Overlay:Link:ConnectTimeout", options.Link.ConnectTimeout, TimeSpan.FromMinutes(5));
        RequireDuration(failures, "Overlay:Link:KeepAlivePingDelay", options.Link.KeepAlivePingDelay, TimeSpan.FromHours(1));
        RequireDuration(failures, "Overlay:Link:KeepAlivePingTimeout", options.Link.KeepAlivePingTimeout, TimeSpan.FromMinutes(10));
        RequireDuration(failures, "Overlay:Directory:GossipInterval", options.Directory.GossipInterval, TimeSpan.FromHours(1));
        RequireDuration(failures, "Overlay:Directory:CallTimeout", options.Directory.CallTimeout, TimeSpan.FromMinutes(5));
        RequireDuration(failures, "Overlay:Directory:ForgetDownAfter", options.Directory.ForgetDownAfter, TimeSpan.FromDays(7));
        RequireDuration(failures, "Overlay:Directory:ProofCooldown", options.Directory.ProofCooldown, TimeSpan.FromDays(1));
        RequireDuration(failures, "Overlay:Directory:ProofCooldownInitial", options.Directory.ProofCooldownInitial, TimeSpan.FromDays(1));
        RequireDuration(failures, "Overlay:Tunnels:DefaultDeadline", options.Tunnels.DefaultDeadline, TimeSpan.FromHours(6));
        RequireDuration(failures, "Overlay:Tunnels:DrainTimeout", options.Tunnels.DrainTimeout, TimeSpan.FromHours(1));
    }

    private static void RequireDuration(List<string> failures, string key, TimeSpan value, TimeSpan max)
    {
        if (!(value > TimeSpan.Zero && value <= max))
        {
            failures.Add($"{key} must be above zero and at most {max}, not {value}");
        }
    }

    private static void RequireRange(List<string> failures, string key, int value, int min, int max)
    {
        if (!(value >= min && value <= max))
        {
            failures.Add($"{key} must be between {min} and {max}, not {value}");
        }
    }
}

/// <summary>Defaults computed from other options (applied after binding, before validation).</summary>
internal static class OverlayOptionsDefaults
{
    public static void Apply(OverlayOptions options)
    {
        var network = options.Network.ToParameters();
        if (options.Link.MaxMessageBytes == 0 && network.Validate() is null && options.Tunnels.MaxCellsPerMessage is >= 1 and <= 256)
        {
            options.Link.MaxMessageBytes = LinkLimits.LargestMessage(network, options.Tunnels.MaxCellsPerMessage);
        }
    }
}
