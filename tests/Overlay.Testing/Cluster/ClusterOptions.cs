using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Overlay.Identity;

namespace Overlay.Testing.Cluster;

/// <summary>How a <see cref="TestCluster"/> configures its nodes. The defaults suit a functional test of the node.</summary>
internal sealed record ClusterOptions
{
    /// <summary>Gossip period of every node: fast, so the directory converges in about a second.</summary>
    public TimeSpan GossipInterval { get; init; } = TimeSpan.FromMilliseconds(150);

    /// <summary>
    /// Extra configuration for every node (keys of the <c>Overlay</c> section, e.g. <c>Overlay:Link:StreamWindowBytes</c>).
    /// Links are TLS; an <c>Overlay:Link:Url</c> of <c>http://127.0.0.1:0</c> makes them h2c (the cluster picks the port).
    /// </summary>
    public IReadOnlyDictionary<string, string?> Configuration { get; init; } = new Dictionary<string, string?>();

    /// <summary>Changes the configuration of the node at an index, after <see cref="Configuration"/>.</summary>
    public Action<int, Dictionary<string, string?>>? ConfigureNode { get; init; }

    /// <summary>Adds services to the node at an index (after the cluster's own).</summary>
    public Action<int, IServiceCollection>? ConfigureServices { get; init; }

    /// <summary>Adds middleware or endpoints to the node at an index.</summary>
    public Action<int, WebApplication>? ConfigureApplication { get; init; }

    /// <summary>Destinations run the node's own default handler (echo) instead of <see cref="TestCluster.Handler"/>.</summary>
    public bool NodeDefaultHandler { get; init; }

    /// <summary>
    /// Installs the test hooks: <see cref="TestCluster.Handler"/> (unless <see cref="NodeDefaultHandler"/>),
    /// <see cref="TestCluster.Misbehaviours"/>, <see cref="TestCluster.LinkMessages"/> and <see cref="TestCluster.Headers"/>.
    /// False runs the node exactly as shipped, as a measurement must.
    /// </summary>
    public bool TestHooks { get; init; } = true;

    /// <summary>
    /// Sends every node's log to <see cref="TestCluster.Logs"/> (the node's categories from
    /// <see cref="LogLevel"/> on, framework categories from Warning). False keeps the node's own
    /// providers, configured by <see cref="Configuration"/>.
    /// </summary>
    public bool CaptureLogs { get; init; } = true;

    /// <summary>The lowest level captured from the node's own categories. Tests read the node's Debug events (refused descriptors, failed proofs).</summary>
    public LogLevel LogLevel { get; init; } = LogLevel.Debug;

    /// <summary>
    /// Controls membership: every node admits exactly the cluster's first nodes
    /// (<c>Overlay:Directory:AllowedNodeIds</c>), their identities created before any node starts.
    /// </summary>
    public bool AllowList { get; init; }

    /// <summary>
    /// Serves each node's control API on loopback port 0, accepting <see cref="TestCluster.ApplicationToken"/>
    /// from <see cref="TestCluster.ApplicationTokenFile"/> besides the node's own operator token.
    /// </summary>
    public bool ControlEndpoints { get; init; }

    /// <summary>
    /// Makes the network private with this key as its one authority (<c>Overlay:Network:Authorities</c>):
    /// each node that <see cref="Admit"/> accepts gets a membership signed with it as soon as it has
    /// bound its link endpoint. Null (the default): an open network.
    /// </summary>
    public NodeIdentity? Authority { get; init; }

    /// <summary>With <see cref="Authority"/>: which node indexes get a membership at start. Default: all.</summary>
    public Func<int, bool> Admit { get; init; } = _ => true;

    /// <summary>Stops gossip once the cluster formed, so it does not load the machine while figures are taken.</summary>
    public bool PauseGossipOnceFormed { get; init; }
}
