using Microsoft.Extensions.DependencyInjection;
using Overlay.Errors;
using Overlay.Host.Keys;
using Overlay.Host.Tests.Infrastructure;
using Overlay.Host.Tunnels;
using Overlay.Identity;

namespace Overlay.Host.Tests;

/// <summary>Guarantees 4 and 5 (docs/protocol.md) on running nodes: rotation with overlap, and replay protection across restarts.</summary>
public sealed class KeyTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_tunnel_in_flight_survives_an_onion_key_rotation_at_every_hop()
    {
        // Rotations at once, however recently the nodes started.
        await using var cluster = await TestCluster.StartAsync(5, new ClusterOptions
        {
            Configuration = new Dictionary<string, string?> { ["Overlay:OnionKeys:MinEarlyRotationInterval"] = "00:00:00" },
        });
        var logs = cluster.Logs.Position;
        using var deadline = TestTimeouts.After(60);
        var origin = cluster[0];
        ClusterNode[] hops = [cluster[1], cluster[2], cluster[3], cluster[4]];
        var before = hops.Select(h => h.Descriptor).ToList();
        const long total = 4L << 20;

        await using (var tunnel = await origin.Tunnels.OpenAsync(new TunnelRequest { Route = [.. hops.Select(h => h.Id)], Deadline = TimeSpan.FromMinutes(5) }, deadline.Token))
        {
            var writer = new TunnelWriter(tunnel, total, seed: 4) { PauseAfter = 1L << 20 };
            var reader = new TunnelReader(tunnel);
            var writing = Task.Run(() => writer.RunAsync(deadline.Token));
            var reading = Task.Run(() => reader.RunAsync(writer, deadline.Token));
            await writer.Paused.WaitAsync(deadline.Token);

            // Rotate every hop of the open tunnel and wait for each to publish its new descriptor.
            var rotated = hops.Select(h =>
            {
                var published = new TaskCompletionSource<NodeDescriptor>(TaskCreationOptions.RunContinuationsAsynchronously);
                h.Node.State.DescriptorChanged += d => published.TrySetResult(d);
                return published.Task;
            }).ToList();
            foreach (var hop in hops)
            {
                hop.Node.Services.GetRequiredService<OnionKeyService>().RotateSoon();
            }

            var after = await Task.WhenAll(rotated).WaitAsync(deadline.Token);
            for (var i = 0; i < hops.Length; i++)
            {
                Assert.True(after[i].OnionEpoch > before[i].OnionEpoch, $"{hops[i]} did not start a new epoch");
                Assert.NotNull(hops[i].Node.State.Keys.Find(before[i].OnionEpoch)); // kept for the overlap window
            }

            writer.Resume();
            var replyHash = await reading;
            await writing;
            Assert.Equal(total, reader.Received);
            Assert.Equal(writer.Hash, replyHash);
        }

        // Within the overlap window a header built from the descriptors published before the rotation still works...
        var payload = new byte[10_000];
        Random.Shared.NextBytes(payload);
        var network = origin.Node.State.Network;
        using (var old = RawOrigin.Build(network, before))
        {
            Assert.Equal(payload, await RawOrigin.RoundTripAsync(hops[0].LinkEndpoint, old, payload, deadline.Token));
        }

        // ...and so does one from the new descriptors.
        using (var fresh = RawOrigin.Build(network, [.. hops.Select(h => h.Descriptor)]))
        {
            Assert.Equal(payload, await RawOrigin.RoundTripAsync(hops[0].LinkEndpoint, fresh, payload, deadline.Token));
        }

        await cluster.WaitForNoActiveTunnelsAsync(deadline.Token);
        cluster.Logs.AssertNoUnexpectedWarnings(logs);
    }

    [Fact]
    public async Task After_a_restart_a_node_refuses_every_epoch_whose_replay_cache_it_did_not_reload()
    {
        await using var cluster = await TestCluster.StartAsync(4);
        using var deadline = TestTimeouts.After(60);
        var relay = cluster[1];
        var target = cluster[2];
        var network = target.Node.State.Network;
        var old = target.Descriptor;
        var stateFile = Path.Combine(KeyDirectory.PathIn(target.DataDirectory), OnionKeyStore.StateFileName(old.OnionEpoch));
        var payload = new byte[10_000];
        Random.Shared.NextBytes(payload);

        using var first = RawOrigin.Build(network, [old]);
        Assert.Equal(payload, await RawOrigin.RoundTripAsync(target.LinkEndpoint, first, payload, deadline.Token));

        // A graceful restart saves the epoch with its replay cache and reloads both.
        var port = target.LinkEndpoint.Port;
        await cluster.StopAsync(target.Index);
        Assert.True(File.Exists(stateFile), "a graceful stop saves the onion-key state");
        await cluster.RestartAsync(target.Index);
        Assert.Equal(port, target.LinkEndpoint.Port);
        Assert.Equal(old.Id, target.Id);
        Assert.NotNull(target.Node.State.Keys.Find(old.OnionEpoch));

        var replayed = await Assert.ThrowsAsync<TunnelException>(() => RawOrigin.RoundTripAsync(target.LinkEndpoint, first, payload, deadline.Token));
        Assert.Equal((TunnelErrorKind.Replayed, 1), (replayed.Kind, replayed.Hop));
        using (var second = RawOrigin.Build(network, [old]))
        {
            Assert.Equal(payload, await RawOrigin.RoundTripAsync(target.LinkEndpoint, second, payload, deadline.Token));
        }

        // A crash loses the state (a node consumes its state file when it loads it, and saves it
        // again only on a graceful stop): the epoch and its cache are gone.
        await cluster.StopAsync(target.Index);
        File.Delete(stateFile);
        await cluster.RestartAsync(target.Index);
        Assert.Null(target.Node.State.Keys.Find(old.OnionEpoch));
        Assert.True(target.Descriptor.OnionEpoch > old.OnionEpoch, "a restarted node never reuses an epoch number");

        using (var direct = RawOrigin.Build(network, [old]))
        {
            var refused = await Assert.ThrowsAsync<TunnelException>(() => RawOrigin.RoundTripAsync(target.LinkEndpoint, direct, payload, deadline.Token));
            Assert.Equal((TunnelErrorKind.UnknownEpoch, 1), (refused.Kind, refused.Hop));
        }

        // Through a relay: the relay reports its next hop's refusal, and the origin names hop 2.
        using (var relayed = RawOrigin.Build(network, [relay.Descriptor, old]))
        {
            var refused = await Assert.ThrowsAsync<TunnelException>(() => RawOrigin.RoundTripAsync(relay.LinkEndpoint, relayed, payload, deadline.Token));
            output.WriteLine($"through a relay: {refused.Kind.ToTag()} at hop {refused.Hop}");
            Assert.Equal((TunnelErrorKind.UnknownEpoch, 2), (refused.Kind, refused.Hop));
        }
    }
}
