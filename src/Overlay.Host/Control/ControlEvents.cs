using Google.Protobuf.WellKnownTypes;
using Overlay.Host.Directory;
using Overlay.Identity;
using V1 = Overlay.Protocol.Control.V1;

namespace Overlay.Host.Control;

/// <summary>
/// The node's events as the control API streams them: tunnels opened, closed and failed (those
/// opened or taken through the control API), peers up and down, onion-key rotations. Also the
/// raw peer status changes for WatchPeers.
/// </summary>
internal sealed class ControlEvents : IDisposable
{
    private readonly NodeState _node;
    private readonly PeerDirectory _directory;
    private readonly TimeProvider _time;
    private readonly Lock _epochLock = new();
    private uint? _epoch;

    public ControlEvents(NodeState node, PeerDirectory directory, TimeProvider time)
    {
        _node = node;
        _directory = directory;
        _time = time;
        _epoch = node.Keys.Current?.Epoch;
        directory.StatusChanged += OnPeerStatusChanged;
        node.DescriptorChanged += OnDescriptorChanged;
    }

    /// <summary>Node events.</summary>
    public BoundedFanout<V1.NodeEvent> Events { get; } = new();

    /// <summary>Peer status changes.</summary>
    public BoundedFanout<V1.PeerChange> Peers { get; } = new();

    public void Publish(V1.EventType type, V1.TunnelEvent tunnel)
    {
        if (Events.HasSubscribers)
        {
            Events.Publish(new V1.NodeEvent { Type = type, Time = Now(), Tunnel = tunnel });
        }
    }

    public Timestamp Now() => Timestamp.FromDateTimeOffset(_time.GetUtcNow());

    public static V1.PeerStatus ToWire(PeerStatus status) => status switch
    {
        PeerStatus.Up => V1.PeerStatus.Up,
        PeerStatus.Suspect => V1.PeerStatus.Suspect,
        PeerStatus.Down => V1.PeerStatus.Down,
        PeerStatus.Gone => V1.PeerStatus.Gone,
        _ => V1.PeerStatus.Unspecified,
    };

    private void OnPeerStatusChanged(PeerStatusChange change)
    {
        var status = ToWire(change.Status);
        if (Peers.HasSubscribers)
        {
            Peers.Publish(new V1.PeerChange { NodeId = change.Id.ToString(), Status = status, Endpoint = change.Endpoint.ToString(), Time = Now() });
        }

        var type = change.Status == PeerStatus.Up ? V1.EventType.PeerUp : V1.EventType.PeerDown;
        if (Events.HasSubscribers && change.Status != PeerStatus.Suspect)
        {
            Events.Publish(new V1.NodeEvent
            {
                Type = type,
                Time = Now(),
                Peer = new V1.PeerEvent { NodeId = change.Id.ToString(), Status = status, Endpoint = change.Endpoint.ToString() },
            });
        }
    }

    private void OnDescriptorChanged(NodeDescriptor descriptor)
    {
        lock (_epochLock)
        {
            if (_epoch == descriptor.OnionEpoch)
            {
                return;
            }

            _epoch = descriptor.OnionEpoch;
        }

        Events.Publish(new V1.NodeEvent
        {
            Type = V1.EventType.KeyRotated,
            Time = Now(),
            Key = new V1.KeyEvent
            {
                Epoch = descriptor.OnionEpoch,
                ValidFrom = Timestamp.FromDateTimeOffset(descriptor.OnionValidFrom),
                ExpiresAt = Timestamp.FromDateTimeOffset(descriptor.OnionExpiresAt),
            },
        });
    }

    public void Dispose()
    {
        _directory.StatusChanged -= OnPeerStatusChanged;
        _node.DescriptorChanged -= OnDescriptorChanged;
    }
}
