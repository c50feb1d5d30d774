using System.Reflection;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Overlay.Host.Directory;
using Overlay.Host.Keys;
using Overlay.Identity;
using Overlay.Onion;
using V1 = Overlay.Protocol.Control.V1;

namespace Overlay.Host.Control;

/// <summary>What the node is and how it is doing: GetInfo, GetStats; and RotateKeys.</summary>
internal sealed partial class ControlService
{
    public override Task<V1.NodeInfo> GetInfo(V1.GetInfoRequest request, ServerCallContext context)
    {
        var now = time.GetUtcNow();
        var key = node.Keys.Current?.Key;
        var info = new V1.NodeInfo
        {
            NodeId = node.Id.ToString(),
            LinkEndpoint = node.LinkEndpoint?.ToString() ?? "",
            ControlEndpoint = endpoint.Url.ToString(),
            ProtocolVersion = NodeDescriptor.ProtocolVersion,
            OnionEpoch = key?.Epoch ?? 0,
            StartedAt = Timestamp.FromDateTimeOffset(endpoint.StartedAt),
            Uptime = Duration.FromTimeSpan(now - endpoint.StartedAt),
            MaxRelays = (uint)node.Network.MaxRelays,
            CellSize = (uint)node.Network.CellSize,
            CellConstruction = node.Network.Construction.ToString(),
            PeersUp = (uint)directory.UpCount,
            PeersKnown = (uint)directory.Peers.Count,
            TunnelsActive = (uint)Math.Max(0, registry.Active),
            ControlTunnels = (uint)tunnels.Count,
            Listeners = (uint)listeners.Count,
            CallerRole = ControlCaller.Of(context).Role == ControlRole.Operator ? ControlTokens.OperatorName : ControlTokens.ApplicationName,
            Caller = ControlCaller.Of(context).Name,
            Version = Version,
        };
        if (key is not null)
        {
            info.OnionValidFrom = Timestamp.FromDateTimeOffset(key.ValidFrom);
            info.OnionExpiresAt = Timestamp.FromDateTimeOffset(key.ExpiresAt);
        }

        return Task.FromResult(info);
    }

    public override Task<V1.Stats> GetStats(V1.GetStatsRequest request, ServerCallContext context)
    {
        var peers = directory.Peers;
        var cache = node.Keys.Current?.ReplayCache;
        return Task.FromResult(new V1.Stats
        {
            Time = events.Now(),
            TunnelsServed = (uint)Math.Max(0, registry.Served),
            TunnelsOriginated = (uint)Math.Max(0, registry.Originated),
            ControlTunnelsOpen = (uint)tunnels.Count,
            ControlTunnelsOpenedTotal = (ulong)tunnels.OpenedTotal,
            ControlTunnelsFailedTotal = (ulong)tunnels.FailedTotal,
            ControlBytesSentTotal = (ulong)tunnels.BytesSentTotal,
            ControlBytesReceivedTotal = (ulong)tunnels.BytesReceivedTotal,
            Listeners = (uint)listeners.Count,
            IncomingToListenersTotal = (ulong)listeners.DeliveredTotal,
            IncomingEchoedTotal = (ulong)listeners.EchoedTotal,
            IncomingRefusedTotal = (ulong)listeners.RefusedTotal,
            EventSubscribers = (uint)(events.Events.Count + events.Peers.Count),
            EventsPublishedTotal = (ulong)events.Events.PublishedTotal,
            EventConsumersDroppedTotal = (ulong)(events.Events.DroppedTotal + events.Peers.DroppedTotal),
            PeersUp = (uint)peers.Count(p => p.Status == PeerStatus.Up),
            PeersSuspect = (uint)peers.Count(p => p.Status == PeerStatus.Suspect),
            PeersDown = (uint)peers.Count(p => p.Status == PeerStatus.Down),
            ReplayCacheEntries = (uint)(cache?.Count ?? 0),
            ReplayCacheCapacity = (uint)(cache?.Capacity ?? 0),
            PingsTotal = (ulong)tunnels.PingsTotal,
        });
    }

    public override async Task<V1.RotateKeysResponse> RotateKeys(V1.RotateKeysRequest request, ServerCallContext context)
    {
        var rotation = keys.RotateSoon();
        var previous = rotation.Current.Key;
        if (rotation.At > time.GetUtcNow())
        {
            return new V1.RotateKeysResponse
            {
                Outcome = V1.RotationOutcome.Deferred,
                PreviousEpoch = previous.Epoch,
                Epoch = previous.Epoch,
                ValidFrom = Timestamp.FromDateTimeOffset(previous.ValidFrom),
                ExpiresAt = Timestamp.FromDateTimeOffset(previous.ExpiresAt),
                RotatesAt = Timestamp.FromDateTimeOffset(rotation.At),
            };
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(30));
        OnionKeyEpoch rotated;
        try
        {
            rotated = await rotation.Rotated.WaitAsync(timeout.Token);
        }
        catch (OperationCanceledException) when (rotation.Rotated.IsCanceled)
        {
            throw ShuttingDown();
        }
        catch (OperationCanceledException) when (!context.CancellationToken.IsCancellationRequested)
        {
            throw ControlErrors.Error(StatusCode.DeadlineExceeded, "timeout", "the key rotation did not complete within 30 s; see the node's log");
        }

        return new V1.RotateKeysResponse
        {
            Outcome = V1.RotationOutcome.Rotated,
            PreviousEpoch = previous.Epoch,
            Epoch = rotated.Epoch,
            ValidFrom = Timestamp.FromDateTimeOffset(rotated.Key.ValidFrom),
            ExpiresAt = Timestamp.FromDateTimeOffset(rotated.Key.ExpiresAt),
        };
    }
}
