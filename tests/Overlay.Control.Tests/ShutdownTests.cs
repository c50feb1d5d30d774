using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Overlay.Host;
using Overlay.Host.Options;
using Overlay.Identity;
using V1 = Overlay.Protocol.Control.V1;

namespace Overlay.Control.Tests;

/// <summary>
/// A node asked to stop does not wait on control streams that would stay open for as long as
/// their clients like, and has its onion keys on disk before Kestrel's own shutdown wait.
/// </summary>
public sealed class ShutdownTests
{
    private static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(2);

    // What a stop with nothing to drain may take at most: the drain bound and a little more, well under the host's shutdown timeout.
    private static readonly TimeSpan StopBound = DrainTimeout + TestTimeouts.Seconds(5);

    [Fact]
    public async Task A_stopping_node_ends_listen_and_watch_streams_as_unavailable_and_saves_its_keys_right_after_the_drain()
    {
        await using var overlay = await TestOverlay.StartAsync(1, (_, c) => c["Overlay:Tunnels:DrainTimeout"] = DrainTimeout.ToString());
        var node = overlay.Nodes[0];
        Assert.Equal(OverlayNode.ShutdownTimeout(DrainTimeout), node.Services.GetRequiredService<IOptions<HostOptions>>().Value.ShutdownTimeout);
        using var deadline = TestTimeouts.After(60);
        using var operatorClient = overlay.Client(0);
        using var application = overlay.Client(0, token: TestOverlay.ApplicationToken);

        using var listen = application.Api.Listen(new V1.ListenRequest(), cancellationToken: deadline.Token);
        using var events = operatorClient.Api.WatchEvents(new V1.WatchEventsRequest(), cancellationToken: deadline.Token);
        using var peers = operatorClient.Api.WatchPeers(new V1.WatchPeersRequest(), cancellationToken: deadline.Token);
        await Task.WhenAll(listen.ResponseHeadersAsync, events.ResponseHeadersAsync, peers.ResponseHeadersAsync).WaitAsync(deadline.Token);

        // ApplicationStopping fires after every service's "stopping" phase (the drain among them) and before Kestrel stops.
        var dataDirectory = node.Services.GetRequiredService<IOptions<OverlayOptions>>().Value.DataDirectory;
        var epoch = node.State.Keys.Current!.Epoch;
        bool? savedWhenKestrelStops = null;
        using var probe = node.App.Lifetime.ApplicationStopping.Register(() => savedWhenKestrelStops = StateFileExists(dataDirectory, epoch));

        var stop = node.StopAsync(deadline.Token);
        await stop.WaitAsync(StopBound, deadline.Token);

        Assert.True(savedWhenKestrelStops, "the onion keys were not on disk when Kestrel began to stop");
        Assert.True(StateFileExists(dataDirectory, epoch), "a graceful stop saves the onion-key state");
        await AssertShuttingDownAsync(listen.ResponseStream, deadline.Token);
        await AssertShuttingDownAsync(events.ResponseStream, deadline.Token);
        await AssertShuttingDownAsync(peers.ResponseStream, deadline.Token);
    }

    [Fact]
    public void The_host_shutdown_timeout_is_the_drain_timeout_plus_a_fixed_margin()
    {
        Assert.Equal(TimeSpan.FromSeconds(30), OverlayNode.ShutdownTimeout(TimeSpan.FromSeconds(20)));
        Assert.Equal(OverlayNode.ShutdownMargin, OverlayNode.ShutdownTimeout(TimeSpan.FromSeconds(-1)));
    }

    // The state file may sit in the data directory or below it.
    private static bool StateFileExists(string dataDirectory, uint epoch) =>
        Directory.EnumerateFiles(dataDirectory, OnionKeyStore.StateFileName(epoch), SearchOption.AllDirectories).Any();

    private static async Task AssertShuttingDownAsync<T>(IAsyncStreamReader<T> stream, CancellationToken cancellationToken)
    {
        var ended = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            while (await stream.MoveNext(cancellationToken))
            {
                // Items published before the stop (an event, a peer change) come first.
            }
        });
        Assert.True(ended.StatusCode == StatusCode.Unavailable, $"expected Unavailable, got {ended.StatusCode}: {ended.Status.Detail}");
        Assert.Equal("shutting_down", ended.Reason());
        Assert.Contains("the node is shutting down", ended.Status.Detail, StringComparison.Ordinal);
    }
}
