using System.Runtime.InteropServices;
using Google.Protobuf;
using Microsoft.Extensions.DependencyInjection;
using Overlay.Host.Directory;
using Overlay.Host.Tests.Infrastructure;
using Overlay.Host.Tunnels;
using Overlay.Identity;
using Overlay.Protocol;
using Overlay.Protocol.V1;

namespace Overlay.Host.Tests.Directory;

/// <summary>What gossip from a hostile peer cannot do: keep the provers busy on dead endpoints, or kill tunnels with one unusable key.</summary>
public sealed class HostileGossipTests
{
    [Fact]
    public async Task A_dead_endpoint_gossiped_again_is_not_dialed_again_during_its_cooldown()
    {
        await using var recorder = new ConnectionRecorder();
        // A real clock: the first wait (5 s by default) is set to outlast the test on a loaded machine.
        await using var cluster = await TestCluster.StartAsync(1, new ClusterOptions
        {
            Configuration = new Dictionary<string, string?> { ["Overlay:Directory:ProofCooldownInitial"] = "00:01:00" },
        });
        var node = cluster[0];
        var directory = node.Node.Services.GetRequiredService<DirectoryService>();
        using var deadline = TestTimeouts.After(30);
        var logs = cluster.Logs.Position;
        using var owner = NodeIdentity.Create();
        var now = DateTimeOffset.UtcNow;
        using var onionKey = OnionKey.Create(1, now.AddMinutes(-1), now.AddHours(1));
        var dead = NodeDescriptor.Create(owner, onionKey, new Uri($"https://127.0.0.1:{recorder.Port}"), NetworkParameters.Default, now);

        await GossipAsync(node, dead, deadline.Token);
        await cluster.Logs.WaitForAsync(e => e.Sequence >= logs && e.EventId.Id == 302 && e.Message.Contains(dead.Id.ToShortString(), StringComparison.Ordinal),
            "the first proof failed", deadline.Token);
        await WaitUntilAsync(() => !directory.IsProving(dead.Id), deadline.Token);
        Assert.Equal(1, recorder.Connections);

        // Gossiped again and again: not queued for a proof (Consider runs within the Exchange call).
        for (var i = 0; i < 5; i++)
        {
            await GossipAsync(node, dead, deadline.Token);
            Assert.False(directory.IsProving(dead.Id));
        }

        Assert.Equal(1, recorder.Connections);
    }

    [Fact]
    public async Task A_peer_whose_key_fails_the_header_build_is_dropped_and_the_tunnel_goes_through_others()
    {
        await using var cluster = await TestCluster.StartAsync(7);
        var origin = cluster[0];
        var destination = cluster[6];
        var bad = cluster[2];
        using var deadline = TestTimeouts.After(60);
        var logs = cluster.Logs.Position;

        // A peer admitted before admission checked for small-order keys: its descriptor in the origin's
        // directory now carries the point 1, which no header can be built to.
        var held = origin.Directory.Find(bad.Id)!.Descriptor;
        Assert.True(MemoryMarshal.TryGetArray(held.OnionKey, out var key));
        key.AsSpan().Clear();
        key.Array![key.Offset] = 1;
        Assert.False(NodeDescriptor.IsUsableOnionKey(held.OnionKey.Span));

        // Four relays from five candidates: almost every first route goes through the bad peer.
        for (var i = 0; i < 10; i++)
        {
            var trip = await origin.Tunnels.RoundTripAsync(new TunnelRequest { Destination = destination.Id, Relays = 4 }, "ping"u8.ToArray(), cancellationToken: deadline.Token);
            Assert.Equal("ping"u8.ToArray(), trip.Reply);
        }

        Assert.Contains(cluster.Logs.Entries, e => e.Sequence >= logs && e.Node == "node0" && e.EventId.Id == 204 && e.Message.Contains("malformed", StringComparison.Ordinal));
    }

    private static async Task GossipAsync(ClusterNode node, NodeDescriptor descriptor, CancellationToken cancellationToken)
    {
        using var channel = TestLinkTls.Channel(node.LinkEndpoint);
        await new Protocol.V1.Link.LinkClient(channel).ExchangeAsync(new DescriptorExchange { Known = { ByteString.CopyFrom(descriptor.Encoded.Span) } },
            cancellationToken: cancellationToken);
    }

    // The proof's end is logged just before the prover lets go of it: poll that short gap, bounded by the token.
    internal static async Task WaitUntilAsync(Func<bool> condition, CancellationToken cancellationToken)
    {
        while (!condition())
        {
            await Task.Delay(10, cancellationToken);
        }
    }
}
