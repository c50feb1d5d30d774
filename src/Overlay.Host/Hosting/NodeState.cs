using Overlay.Identity;
using Overlay.Onion;
using Overlay.Protocol;

namespace Overlay.Host;

/// <summary>
/// What makes this node itself: its identity, the network it belongs to, its onion keys and the
/// header processor over them, and the descriptor it currently publishes.
/// </summary>
public sealed class NodeState : IDisposable
{
    private readonly TaskCompletionSource _published = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private NodeDescriptor? _descriptor;

    internal NodeState(NodeIdentity identity, NetworkParameters network, DescriptorFeatures features = DescriptorFeatures.None)
    {
        Identity = identity;
        Network = network;
        Features = features;
        Keys = new OnionKeyRing();
        Processor = new OnionHeaderProcessor(network, Keys);
        HeaderBuilder = new OnionHeaderBuilder(network);
    }

    /// <summary>This node's identity.</summary>
    public NodeIdentity Identity { get; }

    /// <summary>This node's id.</summary>
    public NodeId Id => Identity.Id;

    /// <summary>The network's parameters.</summary>
    public NetworkParameters Network { get; }

    /// <summary>The optional features every descriptor of this node announces (from its own configuration).</summary>
    public DescriptorFeatures Features { get; }

    /// <summary>The onion keys headers are accepted for.</summary>
    public OnionKeyRing Keys { get; }

    internal OnionHeaderProcessor Processor { get; }

    internal OnionHeaderBuilder HeaderBuilder { get; }

    /// <summary>The link endpoint other nodes dial, once the node has started.</summary>
    public Uri? LinkEndpoint { get; internal set; }

    /// <summary>The descriptor this node publishes now (null before start).</summary>
    public NodeDescriptor? Descriptor => Volatile.Read(ref _descriptor);

    /// <summary>Completes when the first descriptor is published (the node is listening and has a key).</summary>
    public Task Published => _published.Task;

    /// <summary>Raised after the descriptor changed (start, key rotation).</summary>
    public event Action<NodeDescriptor>? DescriptorChanged;

    /// <summary>Signs a fresh descriptor for the current onion key and endpoint.</summary>
    internal NodeDescriptor Publish(DateTimeOffset now)
    {
        var key = Keys.Current?.Key ?? throw new InvalidOperationException("no onion key yet");
        var endpoint = LinkEndpoint ?? throw new InvalidOperationException("the link endpoint is not bound yet");
        var descriptor = NodeDescriptor.Create(Identity, key, endpoint, Network, now, Features);
        Volatile.Write(ref _descriptor, descriptor);
        _published.TrySetResult();
        DescriptorChanged?.Invoke(descriptor);
        return descriptor;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Keys.Dispose();
        Identity.Dispose();
    }
}
