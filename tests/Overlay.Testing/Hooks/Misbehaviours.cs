using System.Collections.Concurrent;
using Overlay.Testing.Cluster;

namespace Overlay.Testing.Hooks;

/// <summary>
/// Per-node misbehaviour of a <see cref="TestCluster"/>, applied by <see cref="MisbehavingLinkInterceptor"/> in
/// front of the node's Link service: a relay that follows the protocol only when it suits it.
/// </summary>
internal sealed class Misbehaviours
{
    private readonly ConcurrentDictionary<string, RelayMisbehaviour> _byNode = new(StringComparer.Ordinal);
    private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Set(ClusterNode node, RelayMisbehaviour misbehaviour) => _byNode[node.Name] = misbehaviour;

    public RelayMisbehaviour Of(string node) => _byNode.GetValueOrDefault(node);

    /// <summary>Lets held hops read again.</summary>
    public void Release() => _released.TrySetResult();

    internal Task Released => _released.Task;
}
