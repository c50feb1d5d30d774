using Grpc.Health.V1;
using Grpc.Net.Client;
using Overlay.Errors;
using Overlay.Host.Tests.Infrastructure;
using Overlay.Host.Tunnels;

namespace Overlay.Host.Tests;

/// <summary>Graceful drain: a node asked to stop stops advertising readiness, refuses new tunnels, lets open ones finish.</summary>
public sealed class DrainTests
{
    [Fact]
    public async Task A_stopping_node_lets_an_open_tunnel_finish_and_refuses_a_new_one()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        using var deadline = TestTimeouts.After(30);
        var origin = cluster[0];
        var destination = cluster[2];
        var request = new byte[200_000];
        Random.Shared.NextBytes(request);

        await using var open = await origin.Tunnels.OpenAsync(new TunnelRequest { Route = [cluster[1].Id, destination.Id] }, deadline.Token);
        await open.WriteAsync(request.AsMemory(0, 1000), cancellationToken: deadline.Token);
        var reply = new MemoryStream();
        await ReadAtLeastAsync(open, reply, 1000, deadline.Token); // the tunnel is up end to end

        // Kestrel stops after ApplicationStopping: by then the keys are saved, and not before the drain ended.
        var epoch = destination.Node.State.Keys.Current!.Epoch;
        bool? savedWhenKestrelStops = null;
        using var probe = destination.Node.App.Lifetime.ApplicationStopping.Register(() => savedWhenKestrelStops = OnionStateSaved(destination, epoch));
        var stopping = cluster.StopAsync(2);
        while (!destination.Registry.Draining)
        {
            // No event marks the start of a drain; it follows the stop request within milliseconds.
            await Task.Delay(10, deadline.Token);
        }

        using (var channel = TestLinkTls.Channel(destination.LinkEndpoint))
        {
            var health = await new Health.HealthClient(channel).CheckAsync(new HealthCheckRequest(), cancellationToken: deadline.Token);
            Assert.Equal(HealthCheckResponse.Types.ServingStatus.NotServing, health.Status);
        }

        var refused = await Assert.ThrowsAsync<TunnelException>(() =>
            origin.Tunnels.RoundTripAsync(new TunnelRequest { Route = [destination.Id] }, new byte[64], cancellationToken: deadline.Token));
        Assert.Equal((TunnelErrorKind.Busy, 1), (refused.Kind, refused.Hop));
        Assert.False(stopping.IsCompleted, "the node stopped while a tunnel was still open");
        Assert.False(OnionStateSaved(destination, epoch), "the onion keys were saved while tunnels were still draining");

        await open.WriteAsync(request.AsMemory(1000), final: true, deadline.Token);
        await ReadAtLeastAsync(open, reply, int.MaxValue, deadline.Token);
        Assert.Equal(request, reply.ToArray());
        await open.DisposeAsync();
        await stopping.WaitAsync(deadline.Token);
        Assert.Equal(0, destination.Registry.Active);
        Assert.True(savedWhenKestrelStops, "the onion keys were not saved right after the drain");
    }

    // The state file may sit in the data directory or below it.
    private static bool OnionStateSaved(ClusterNode node, uint epoch) =>
        System.IO.Directory.EnumerateFiles(node.DataDirectory, Identity.OnionKeyStore.StateFileName(epoch), SearchOption.AllDirectories).Any();

    // Reads until `count` bytes arrived in total, or to the end of the reply.
    private static async Task ReadAtLeastAsync(OverlayTunnel tunnel, MemoryStream reply, int count, CancellationToken cancellationToken)
    {
        var buffer = new byte[tunnel.PreferredWriteSize];
        while (reply.Length < count)
        {
            var read = await tunnel.ReadAsync(buffer, cancellationToken);
            if (read == 0)
            {
                return;
            }

            reply.Write(buffer, 0, read);
        }
    }
}
