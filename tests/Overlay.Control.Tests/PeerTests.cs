using Grpc.Core;
using V1 = Overlay.Protocol.Control.V1;

namespace Overlay.Control.Tests;

/// <summary>Four nodes these tests may change (bans, removals).</summary>
public sealed class MutableOverlay : IAsyncLifetime
{
    public TestOverlay Overlay { get; private set; } = null!;

    public async Task InitializeAsync() => Overlay = await TestOverlay.StartAsync(4);

    public async Task DisposeAsync() => await Overlay.DisposeAsync();
}

[Collection(SharedOverlayCollection.Name)]
public sealed class PeerTests(MutableOverlay mutable) : IClassFixture<MutableOverlay>
{
    private TestOverlay Overlay => mutable.Overlay;

    [Fact]
    public async Task Ban_removes_the_peer_reports_it_and_refuses_it_afterwards()
    {
        using var client = Overlay.Client(0);
        using var deadline = TestTimeouts.After(30);
        var banned = Overlay.Nodes[3];
        using var watch = client.Api.WatchPeers(new V1.WatchPeersRequest(), cancellationToken: deadline.Token);
        await watch.ResponseHeadersAsync;

        var result = await client.Api.RemovePeerAsync(new V1.RemovePeerRequest { NodeId = banned.Id.ToString(), Ban = true });
        Assert.True(result.Removed);
        Assert.True(result.Banned);
        Assert.True(await watch.ResponseStream.MoveNext(deadline.Token));
        Assert.Equal(banned.Id.ToString(), watch.ResponseStream.Current.NodeId);
        Assert.Equal(V1.PeerStatus.Gone, watch.ResponseStream.Current.Status);

        var peers = await client.Api.ListPeersAsync(new V1.ListPeersRequest());
        Assert.DoesNotContain(peers.Peers, p => p.NodeId == banned.Id.ToString());
        Assert.Contains(banned.Id.ToString(), peers.Banned);

        var again = await Rpc.ThrowsAsync(StatusCode.FailedPrecondition, async () =>
            await client.Api.AddPeerAsync(new V1.AddPeerRequest { Endpoint = banned.LinkEndpoint.ToString() }, cancellationToken: deadline.Token));
        Assert.Equal("not_admitted", again.Reason());

        using var ping = client.Api.Ping(new V1.PingRequest { Destination = banned.Id.ToString(), Relays = 0 }, cancellationToken: deadline.Token);
        Assert.Equal("unknown_destination", (await Rpc.ThrowsAsync(StatusCode.NotFound, async () => await ping.ResponseStream.MoveNext(deadline.Token))).Reason());
    }

    [Fact]
    public async Task Add_peer_proves_the_node_at_an_endpoint()
    {
        using var client = Overlay.Client(0);
        using var deadline = TestTimeouts.After(30);
        var peer = Overlay.Nodes[2];
        await client.Api.RemovePeerAsync(new V1.RemovePeerRequest { NodeId = peer.Id.ToString() });
        var added = await client.Api.AddPeerAsync(new V1.AddPeerRequest { Endpoint = peer.LinkEndpoint.ToString() }, cancellationToken: deadline.Token);
        Assert.Equal(peer.Id.ToString(), added.NodeId);
        Assert.Equal(V1.PeerStatus.Up, added.Status);

        var unreachable = await Rpc.ThrowsAsync(StatusCode.Unavailable, async () =>
            await client.Api.AddPeerAsync(new V1.AddPeerRequest { Endpoint = "http://127.0.0.1:1" }, cancellationToken: deadline.Token));
        Assert.Equal("peer_unreachable", unreachable.Reason());
    }

    [Fact]
    public async Task Ping_through_a_dead_relay_names_the_failing_hop()
    {
        await using var overlay = await TestOverlay.StartAsync(4);
        using var client = overlay.Client(0);
        using var deadline = TestTimeouts.After(30);
        await overlay.KillAsync(3);

        using var call = client.Api.OpenTunnel(cancellationToken: deadline.Token);
        var route = new[] { overlay.Nodes[1].Id.ToString(), overlay.Nodes[3].Id.ToString(), overlay.Nodes[2].Id.ToString() };
        await call.RequestStream.WriteAsync(new V1.OpenTunnelRequest { Open = new V1.TunnelTarget { Route = { route } }, Data = Google.Protobuf.ByteString.CopyFromUtf8("x"), End = true });
        await call.RequestStream.CompleteAsync();
        var error = await Rpc.ThrowsAsync(StatusCode.Unavailable, async () =>
        {
            while (await call.ResponseStream.MoveNext(deadline.Token))
            {
            }
        });
        // The relay before it could not reach it, or lost the link as it went: either way, hop 2.
        Assert.Contains(error.Reason(), new[] { "next_hop_unreachable", "link_lost" });
        Assert.Equal("2", error.Trailers.GetValue("overlay-hop"));
        Assert.Contains("hop 2", error.Status.Detail, StringComparison.Ordinal);

        // Ping reports the same per attempt, without ending its stream.
        using var ping = client.Api.Ping(new V1.PingRequest { Route = { route }, Count = 2 }, cancellationToken: deadline.Token);
        var attempts = await ping.ResponseStream.ReadAllAsync(deadline.Token).ToListAsync(deadline.Token);
        Assert.Equal([1u, 2u], attempts.Select(a => a.Attempt));
        Assert.All(attempts, a =>
        {
            Assert.False(a.Ok);
            Assert.Equal(2u, a.Error.Hop);
        });
    }
}
