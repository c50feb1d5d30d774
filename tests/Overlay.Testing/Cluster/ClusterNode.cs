using Overlay.Host;
using Overlay.Host.Directory;
using Overlay.Host.Tunnels;
using Overlay.Identity;

namespace Overlay.Testing.Cluster;

/// <summary>One node of a <see cref="TestCluster"/>: the running <see cref="OverlayNode"/> and what it was built from.</summary>
internal sealed class ClusterNode
{
    internal ClusterNode(int index, string name, string dataDirectory, IReadOnlyDictionary<string, string?> configuration, OverlayNode node)
    {
        Index = index;
        Name = name;
        DataDirectory = dataDirectory;
        Configuration = configuration;
        Node = node;
    }

    /// <summary>The node's place in <see cref="TestCluster.Nodes"/>.</summary>
    public int Index { get; }

    /// <summary>Unique in the cluster, also after a node was replaced: <c>node0</c>, <c>node1</c>...</summary>
    public string Name { get; }

    /// <summary>The node's own data directory (identity, onion-key state), removed with the cluster.</summary>
    public string DataDirectory { get; }

    /// <summary>The configuration the node was built with.</summary>
    public IReadOnlyDictionary<string, string?> Configuration { get; }

    /// <summary>The current incarnation (a restart builds a new one on the same data directory).</summary>
    public OverlayNode Node { get; internal set; }

    /// <summary>False once stopped or killed.</summary>
    public bool Running { get; internal set; }

    public NodeId Id { get; internal set; }

    public Uri LinkEndpoint { get; internal set; } = null!;

    public IServiceProvider Services => Node.Services;

    public PeerDirectory Directory => Node.Directory;

    public TunnelClient Tunnels => Node.Tunnels;

    public TunnelRegistry Registry => Node.Registry;

    public NodeDescriptor Descriptor => Node.State.Descriptor ?? throw new InvalidOperationException($"{Name} has no descriptor");

    public override string ToString() => $"{Name} ({Id.ToShortString()})";
}
