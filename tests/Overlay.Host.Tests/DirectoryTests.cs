using System.Collections.Concurrent;
using System.Diagnostics;
using Google.Protobuf;
using Grpc.Net.Client;
using Microsoft.Extensions.DependencyInjection;
using Overlay.Host.Directory;
using Overlay.Host.Tests.Infrastructure;
using Overlay.Host.Tunnels;
using Overlay.Identity;
using Overlay.Protocol.V1;

namespace Overlay.Host.Tests;

/// <summary>Peer discovery and status: joining, leaving, and descriptors that must never be admitted.</summary>
public sealed class DirectoryTests(ITestOutputHelper output)
{
    private const int ProofFailedEvent = 302;
    private const int DescriptorRejectedEvent = 301;

    [Fact]
    public async Task A_node_joining_through_one_seed_is_known_to_every_node_within_the_bound()
    {
        await using var cluster = await TestCluster.StartAsync(6);
        using var bound = TestTimeouts.After(10);
        var clock = Stopwatch.StartNew();
        var joined = await cluster.AddNodeAsync();
        Assert.Equal(cluster.SeedEndpoint.ToString(), joined.Configuration["Overlay:Directory:Seeds:0"]);
        Assert.False(joined.Configuration.ContainsKey("Overlay:Directory:Seeds:1"), "one seed only");

        await cluster.WaitForMeshAsync(bound.Token);
        output.WriteLine($"{joined} known to all {cluster.Nodes.Count - 1} others, and knows them, after {clock.Elapsed.TotalMilliseconds:F0} ms (gossip every 150 ms)");
        Assert.All(cluster.Nodes.Where(n => n != joined), n => Assert.Equal(PeerStatus.Up, n.Directory.Find(joined.Id)?.Status));
    }

    [Fact]
    public async Task A_stopped_node_is_marked_down_and_no_new_route_uses_it()
    {
        await using var cluster = await TestCluster.StartAsync(7);
        using var deadline = TestTimeouts.After(30);
        var stopped = cluster[3];
        var clock = Stopwatch.StartNew();
        await cluster.StopAsync(stopped.Index);

        var survivors = cluster.Running.ToList();
        foreach (var survivor in survivors)
        {
            await TestCluster.WaitForDirectoryAsync(survivor, d => d.Find(stopped.Id) is not { Status: PeerStatus.Up or PeerStatus.Suspect },
                $"{survivor} marks {stopped} down or gone", deadline.Token);
        }

        output.WriteLine($"every survivor marked {stopped} down or gone {clock.Elapsed.TotalMilliseconds:F0} ms after it stopped");

        // Each route uses every other survivor, so a selector that still used the stopped node would show it.
        var relays = survivors.Count - 2;
        var request = new byte[256];
        for (var i = 0; i < 30; i++)
        {
            var origin = survivors[i % survivors.Count];
            Random.Shared.NextBytes(request);
            var trip = await origin.Tunnels.RoundTripAsync(new TunnelRequest { Relays = relays }, request, cancellationToken: deadline.Token);
            Assert.Equal(request, trip.Reply);
            Assert.Equal(relays + 1, trip.Route.Count);
            Assert.DoesNotContain(stopped.Id, trip.Route);
        }
    }

    [Fact]
    public async Task Stopping_gossip_alone_ends_the_directory_service_cleanly_and_the_node_keeps_serving()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        using var deadline = TestTimeouts.After(30);
        var service = cluster[1].Node.Services.GetServices<Microsoft.Extensions.Hosting.IHostedService>().OfType<DirectoryService>().Single();

        await service.StopAsync(deadline.Token);

        // The host takes anything but a successful end as a failed background service, and stops the node.
        Assert.True(service.ExecuteTask!.IsCompletedSuccessfully, $"the gossip loop ended {service.ExecuteTask.Status}");
        Assert.False(cluster[1].Registry.Draining, "the node began to shut down");
        var request = new byte[64];
        Random.Shared.NextBytes(request);
        var trip = await cluster[0].Tunnels.RoundTripAsync(new TunnelRequest { Route = [cluster[1].Id, cluster[2].Id] }, request, cancellationToken: deadline.Token);
        Assert.Equal(request, trip.Reply);
    }

    [Fact]
    public async Task Descriptors_with_bad_signatures_are_rejected_and_never_admitted()
    {
        await using var cluster = await TestCluster.StartAsync(4);
        using var deadline = TestTimeouts.After(30);
        var target = cluster[1];
        var victim = cluster[2];
        var seen = WatchFor(cluster);
        using var identity = NodeIdentity.Create();
        var now = DateTimeOffset.UtcNow;
        using var onionKey = OnionKey.Create(1, now, now.AddHours(1));
        var forged = NodeDescriptor.Create(identity, onionKey, victim.LinkEndpoint, target.Node.State.Network, now);
        var badSignature = forged.Encoded.ToArray();
        badSignature[^1] ^= 1;
        var badContent = forged.Encoded.ToArray();
        badContent[40] ^= 1; // inside the signed onion key
        var victimOriginal = victim.Descriptor.Encoded.ToArray();
        var victimSwappedKey = victimOriginal.ToArray();
        victimSwappedKey[40] ^= 1;
        var logs = cluster.Logs.Position;

        var response = await ExchangeAsync(target.LinkEndpoint, badSignature, [badContent, victimSwappedKey], deadline.Token);
        Assert.False(response.Self.IsEmpty);

        var rejected = cluster.Logs.Entries.Where(e => e.Sequence >= logs && e.Node == target.Name && e.EventId.Id == DescriptorRejectedEvent).ToList();
        Assert.Equal(3, rejected.Count);
        Assert.All(rejected, e => Assert.Contains(DescriptorError.BadSignature.Describe(), e.Message, StringComparison.Ordinal));
        Assert.All(cluster.Nodes, n => Assert.Null(n.Directory.Find(forged.Id)));
        Assert.Equal(victimOriginal, target.Directory.Find(victim.Id)!.Descriptor.Encoded.ToArray());
        Assert.DoesNotContain(seen, change => change.Id == forged.Id);
    }

    [Fact]
    public async Task A_well_signed_descriptor_whose_endpoint_cannot_prove_it_is_never_admitted()
    {
        await using var cluster = await TestCluster.StartAsync(4);
        using var deadline = TestTimeouts.After(30);
        var target = cluster[1];
        var victim = cluster[2];
        var seen = WatchFor(cluster);
        using var identity = NodeIdentity.Create();
        var now = DateTimeOffset.UtcNow;
        using var onionKey = OnionKey.Create(1, now, now.AddHours(1));
        var forged = NodeDescriptor.Create(identity, onionKey, victim.LinkEndpoint, target.Node.State.Network, now);
        var logs = cluster.Logs.Position;

        await ExchangeAsync(target.LinkEndpoint, forged.Encoded.ToArray(), [], deadline.Token);
        var failed = await cluster.Logs.WaitForAsync(
            e => e.Sequence >= logs && e.Node == target.Name && e.EventId.Id == ProofFailedEvent && e.Message.Contains(forged.Id.ToShortString(), StringComparison.Ordinal),
            $"{target} fails to prove {forged.Id.ToShortString()} at {victim.LinkEndpoint}", deadline.Token);
        output.WriteLine(failed.ToString());

        Assert.All(cluster.Nodes, n => Assert.Null(n.Directory.Find(forged.Id)));
        Assert.DoesNotContain(seen, change => change.Id == forged.Id);
        Assert.Equal(PeerStatus.Up, target.Directory.Find(victim.Id)?.Status); // the victim is not blamed
    }

    [Fact]
    public async Task A_node_advertising_another_nodes_endpoint_never_becomes_up_anywhere()
    {
        await using var cluster = await TestCluster.StartAsync(5);
        using var deadline = TestTimeouts.After(30);
        var victim = cluster[1];
        var honest = cluster.Nodes.ToList();
        var seen = WatchFor(cluster);
        var logs = cluster.Logs.Position;

        var impostor = await cluster.AddNodeAsync(new Dictionary<string, string?> { ["Overlay:Link:AdvertisedUrl"] = victim.LinkEndpoint.ToString() });
        Assert.Equal(victim.LinkEndpoint, impostor.Node.State.Descriptor!.Endpoint);

        // The impostor can prove the honest nodes and gossips its descriptor to them; each tries to prove it, and fails.
        var impostorId = impostor.Id.ToShortString();
        foreach (var node in honest)
        {
            await cluster.Logs.WaitForAsync(
                e => e.Sequence >= logs && e.Node == node.Name && e.EventId.Id == ProofFailedEvent && e.Message.Contains(impostorId, StringComparison.Ordinal),
                $"{node} fails to prove the impostor {impostorId}", deadline.Token);
        }

        Assert.All(honest, n => Assert.Null(n.Directory.Find(impostor.Id)));
        Assert.DoesNotContain(seen, change => change.Id == impostor.Id);
        Assert.All(honest.Where(n => n != victim), n => Assert.Equal(PeerStatus.Up, n.Directory.Find(victim.Id)?.Status));
    }

    // Every status change any node publishes from now on.
    private static ConcurrentQueue<PeerStatusChange> WatchFor(TestCluster cluster)
    {
        var seen = new ConcurrentQueue<PeerStatusChange>();
        foreach (var node in cluster.Nodes)
        {
            node.Directory.StatusChanged += seen.Enqueue;
        }

        return seen;
    }

    private static async Task<DescriptorExchange> ExchangeAsync(Uri endpoint, byte[] self, IEnumerable<byte[]> known, CancellationToken cancellationToken)
    {
        using var channel = GrpcChannel.ForAddress(endpoint, new GrpcChannelOptions
        {
            HttpHandler = TestLinkTls.Handler(endpoint),
            DisposeHttpClient = true,
        });
        var request = new DescriptorExchange { Self = ByteString.CopyFrom(self) };
        request.Known.AddRange(known.Select(ByteString.CopyFrom));
        return await new Protocol.V1.Link.LinkClient(channel).ExchangeAsync(request, cancellationToken: cancellationToken);
    }
}
