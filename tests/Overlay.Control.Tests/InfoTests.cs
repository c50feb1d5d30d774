using Grpc.Core;
using V1 = Overlay.Protocol.Control.V1;

namespace Overlay.Control.Tests;

[Collection(SharedOverlayCollection.Name)]
public sealed class InfoTests(SharedOverlay shared)
{
    private TestOverlay Overlay => shared.Overlay;

    [Fact]
    public async Task Info_describes_the_node()
    {
        using var client = Overlay.Client(0);
        var node = Overlay.Nodes[0];
        var info = await client.Api.GetInfoAsync(new V1.GetInfoRequest());
        Assert.Equal(node.Id.ToString(), info.NodeId);
        Assert.Equal(node.LinkEndpoint.ToString(), info.LinkEndpoint);
        Assert.Equal(node.Control.Url.ToString(), info.ControlEndpoint);
        Assert.Equal(node.State.Keys.Current!.Epoch, info.OnionEpoch);
        Assert.True(info.OnionExpiresAt.ToDateTimeOffset() > DateTimeOffset.UtcNow);
        Assert.Equal(1u, info.ProtocolVersion);
        Assert.Equal(4u, info.PeersUp);
        Assert.Equal(32u, info.MaxRelays);
        Assert.True(info.Uptime.ToTimeSpan() >= TimeSpan.Zero);
        Assert.Equal("operator", info.CallerRole);
    }

    [Fact]
    public async Task Peers_are_listed_with_status_and_last_seen()
    {
        using var client = Overlay.Client(0);
        var peers = await client.Api.ListPeersAsync(new V1.ListPeersRequest());
        Assert.Equal(Overlay.Nodes.Skip(1).Select(n => n.Id.ToString()).Order(StringComparer.Ordinal), peers.Peers.Select(p => p.NodeId));
        Assert.All(peers.Peers, p =>
        {
            Assert.Equal(V1.PeerStatus.Up, p.Status);
            Assert.Equal(0u, p.ConsecutiveFailures);
            Assert.NotNull(p.LastSeen);
        });
    }

    [Fact]
    public async Task Watch_peers_sends_current_peers_first()
    {
        using var client = Overlay.Client(0);
        using var deadline = TestTimeouts.After(30);
        using var call = client.Api.WatchPeers(new V1.WatchPeersRequest { IncludeCurrent = true }, cancellationToken: deadline.Token);
        var seen = new List<string>();
        while (seen.Count < 4 && await call.ResponseStream.MoveNext(deadline.Token))
        {
            seen.Add(call.ResponseStream.Current.NodeId);
        }

        Assert.Equal(Overlay.Nodes.Skip(1).Select(n => n.Id.ToString()).Order(StringComparer.Ordinal), seen.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Stats_count_tunnels_and_pings()
    {
        using var client = Overlay.Client(0);
        var before = await client.Api.GetStatsAsync(new V1.GetStatsRequest());
        using var deadline = TestTimeouts.After(30);
        using var ping = client.Api.Ping(new V1.PingRequest { Destination = Overlay.Nodes[2].Id.ToString(), Relays = 1, Count = 2 }, cancellationToken: deadline.Token);
        await foreach (var _ in ping.ResponseStream.ReadAllAsync(deadline.Token))
        {
        }

        var after = await client.Api.GetStatsAsync(new V1.GetStatsRequest());
        Assert.Equal(before.PingsTotal + 2, after.PingsTotal);
        Assert.Equal(4u, after.PeersUp);
        Assert.True(after.ReplayCacheCapacity > 0);
    }

    [Fact]
    public async Task Bad_requests_get_invalid_argument_or_not_found_with_a_reason()
    {
        using var client = Overlay.Client(0);
        var malformed = await Rpc.ThrowsAsync(StatusCode.InvalidArgument, async () => await client.Api.RemovePeerAsync(new V1.RemovePeerRequest { NodeId = "xyz" }));
        Assert.Equal("invalid_argument", malformed.Reason());
        Assert.Contains("64 hex digits", malformed.Status.Detail, StringComparison.Ordinal);

        var unknown = await Rpc.ThrowsAsync(StatusCode.NotFound, async () => await client.Api.RemovePeerAsync(new V1.RemovePeerRequest { NodeId = new string('a', 64) }));
        Assert.Equal("unknown_peer", unknown.Reason());

        await Rpc.ThrowsAsync(StatusCode.InvalidArgument, async () => await client.Api.CloseTunnelAsync(new V1.CloseTunnelRequest { TunnelId = "nope" }));
        var noTunnel = await Rpc.ThrowsAsync(StatusCode.NotFound, async () => await client.Api.CloseTunnelAsync(new V1.CloseTunnelRequest { TunnelId = "0123456789abcdef" }));
        Assert.Equal("unknown_tunnel", noTunnel.Reason());

        await Rpc.ThrowsAsync(StatusCode.InvalidArgument, async () => await client.Api.AddPeerAsync(new V1.AddPeerRequest { Endpoint = "not a url" }));

        using var ping = client.Api.Ping(new V1.PingRequest { Destination = new string('b', 64), Relays = 1 });
        var ex = await Rpc.ThrowsAsync(StatusCode.NotFound, async () => await ping.ResponseStream.MoveNext());
        Assert.Equal("unknown_destination", ex.Reason());

        using var tooMany = client.Api.Ping(new V1.PingRequest { Relays = 33 });
        var range = await Rpc.ThrowsAsync(StatusCode.InvalidArgument, async () => await tooMany.ResponseStream.MoveNext());
        Assert.Contains("between 0 and 32", range.Status.Detail, StringComparison.Ordinal);

        // The node is unaffected.
        Assert.Equal(4u, (await client.Api.GetInfoAsync(new V1.GetInfoRequest())).PeersUp);
    }

    [Fact]
    public async Task Rotate_keys_moves_to_a_new_epoch_and_reports_an_event()
    {
        using var client = Overlay.Client(3);
        using var deadline = TestTimeouts.After(30);
        using var events = client.Api.WatchEvents(new V1.WatchEventsRequest { EventTypes = { V1.EventType.KeyRotated } }, cancellationToken: deadline.Token);
        await events.ResponseHeadersAsync;
        var before = (await client.Api.GetInfoAsync(new V1.GetInfoRequest())).OnionEpoch;
        var rotated = await client.Api.RotateKeysAsync(new V1.RotateKeysRequest(), cancellationToken: deadline.Token);
        Assert.Equal(before, rotated.PreviousEpoch);
        Assert.NotEqual(before, rotated.Epoch);
        Assert.Equal(rotated.Epoch, (await client.Api.GetInfoAsync(new V1.GetInfoRequest())).OnionEpoch);
        Assert.True(await events.ResponseStream.MoveNext(deadline.Token));
        Assert.Equal(V1.EventType.KeyRotated, events.ResponseStream.Current.Type);
        Assert.Equal(rotated.Epoch, events.ResponseStream.Current.Key.Epoch);

        // Tunnels through the rotated node still work (the old epoch overlaps).
        using var origin = Overlay.Client(0);
        using var ping = origin.Api.Ping(new V1.PingRequest { Destination = Overlay.Nodes[3].Id.ToString(), Relays = 1 }, cancellationToken: deadline.Token);
        Assert.True(await ping.ResponseStream.MoveNext(deadline.Token));
        Assert.True(ping.ResponseStream.Current.Ok, ping.ResponseStream.Current.Error?.Message);
    }
}
