using System.Diagnostics;
using Overlay.Errors;
using Overlay.Host.Tests.Infrastructure;
using Overlay.Host.Tunnels;
using Overlay.Identity;

namespace Overlay.Host.Tests;

/// <summary>Guarantee 8 (docs/protocol.md): every failure ends the tunnel with a typed error naming the failing hop, and nothing is left open.</summary>
public sealed class FailureTests(ITestOutputHelper output)
{
    // A failing hop's neighbours report the tunnel they lost (201 relay, 202 destination).
    private static bool TunnelReport(LogEntry entry) => entry.EventId.Id is 201 or 202;

    [Theory]
    [InlineData(1)] // the first relay: the origin's own link breaks
    [InlineData(2)] // a middle relay: relay 1 reports its next hop
    [InlineData(4)] // the destination: the last relay reports its next hop
    public async Task A_hop_killed_mid_transfer_is_named_at_the_origin_and_every_survivor_lets_go(int position)
    {
        await using var cluster = await TestCluster.StartAsync(5);
        var logs = cluster.Logs.Position;
        using var deadline = TestTimeouts.After(60);
        var origin = cluster[0];
        await using var tunnel = await origin.Tunnels.OpenAsync(
            new TunnelRequest { Route = [cluster[1].Id, cluster[2].Id, cluster[3].Id, cluster[4].Id], Deadline = TimeSpan.FromMinutes(5) }, deadline.Token);
        var writer = new TunnelWriter(tunnel, 1L << 40, seed: position);
        var reader = new TunnelReader(tunnel);
        var flowing = reader.ReachedAsync(1 << 20);
        var writing = Task.Run(() => writer.RunAsync(deadline.Token));
        var reading = Task.Run(() => reader.RunAsync(writer, deadline.Token));
        await flowing.WaitAsync(deadline.Token);

        var clock = Stopwatch.StartNew();
        await cluster.KillAsync(position);
        using var reported = TestTimeouts.After(10);
        var failure = await Assert.ThrowsAsync<TunnelException>(() => reading.WaitAsync(reported.Token));
        output.WriteLine($"killed hop {position} after {reader.Received:N0} reply bytes; origin saw {failure.Kind.ToTag()} at hop {failure.Hop} after {clock.Elapsed.TotalMilliseconds:F0} ms");
        cluster.Logs.WriteTo(output, logs);
        Assert.Equal(position, failure.Hop);
        Assert.Contains(failure.Kind, new[] { TunnelErrorKind.LinkLost, TunnelErrorKind.NextHopUnreachable });

        // The writer learns the same failure on its next write.
        var writeFailure = await Assert.ThrowsAsync<TunnelException>(() => writing.WaitAsync(reported.Token));
        Assert.Equal(failure.Hop, writeFailure.Hop);

        await tunnel.DisposeAsync();
        await cluster.WaitForNoActiveTunnelsAsync(reported.Token);
        cluster.Logs.AssertNoUnexpectedWarnings(logs, TunnelReport);
    }

    [Fact]
    public async Task A_hop_killed_while_the_origin_is_not_reading_is_named_once_the_origin_reads()
    {
        // Every hop's backward writes are blocked when the relay before the dead one learns of the
        // failure: its error cell must queue behind them rather than the upstream stream being reset.
        await using var cluster = await TestCluster.StartAsync(5);
        var logs = cluster.Logs.Position;
        using var deadline = TestTimeouts.After(60);
        var origin = cluster[0];
        await using var tunnel = await origin.Tunnels.OpenAsync(
            new TunnelRequest { Route = [cluster[1].Id, cluster[2].Id, cluster[3].Id, cluster[4].Id], Deadline = TimeSpan.FromMinutes(5) }, deadline.Token);
        var writer = new TunnelWriter(tunnel, 1L << 40, seed: 5);
        var writing = Task.Run(() => writer.RunAsync(deadline.Token));
        var windows = FlowControlWindows.Of(origin);
        await writer.AssertHeldAsync(windows.Window, windows.OriginNotReading(links: 4), deadline.Token);

        await cluster.KillAsync(2);
        var reader = new TunnelReader(tunnel);
        using var reported = TestTimeouts.After(10);
        var failure = await Assert.ThrowsAsync<TunnelException>(() => reader.RunAsync(writer, reported.Token));
        output.WriteLine($"stalled at {writer.Written:N0} request bytes; read {reader.Received:N0} reply bytes, then {failure.Kind.ToTag()} at hop {failure.Hop}");
        cluster.Logs.WriteTo(output, logs);
        Assert.Equal(2, failure.Hop);
        Assert.Contains(failure.Kind, new[] { TunnelErrorKind.LinkLost, TunnelErrorKind.NextHopUnreachable });

        await Assert.ThrowsAsync<TunnelException>(() => writing.WaitAsync(reported.Token));
        await tunnel.DisposeAsync();
        await cluster.WaitForNoActiveTunnelsAsync(reported.Token);
        cluster.Logs.AssertNoUnexpectedWarnings(logs, TunnelReport);
    }

    [Theory]
    [InlineData(1)] // the origin cannot reach it
    [InlineData(3)] // relay 2 does not know it
    [InlineData(5)] // as the destination: relay 4 does not know it
    public async Task A_hop_only_the_origin_knows_is_named_at_its_position(int position)
    {
        await using var cluster = await TestCluster.StartAsync(5);
        var logs = cluster.Logs.Position;
        using var deadline = TestTimeouts.After(30);
        var origin = cluster[0];

        // A genuine, well-signed descriptor of a node nobody runs, at an address where nothing listens,
        // put into the origin's directory only (the others would have to prove its endpoint, and cannot).
        using var identity = NodeIdentity.Create();
        var now = DateTimeOffset.UtcNow;
        using var onionKey = OnionKey.Create(1, now, now.AddHours(1));
        var ghost = NodeDescriptor.Create(identity, onionKey, new Uri($"http://127.0.0.1:{Ports.Unused()}/"), origin.Node.State.Network, now);
        origin.Directory.AddConfirmed(ghost, System.Net.IPAddress.Loopback);

        List<NodeId> route = [cluster[1].Id, cluster[2].Id, cluster[3].Id, cluster[4].Id];
        route.Insert(position - 1, ghost.Id);
        var failure = await Assert.ThrowsAsync<TunnelException>(() =>
            origin.Tunnels.RoundTripAsync(new TunnelRequest { Route = route }, new byte[64], cancellationToken: deadline.Token));
        output.WriteLine($"unknown hop at position {position}: {failure.Kind.ToTag()} at hop {failure.Hop}");

        Assert.Equal(position, failure.Hop);
        Assert.Equal(position == 1 ? TunnelErrorKind.NextHopUnreachable : TunnelErrorKind.UnknownNextHop, failure.Kind);
        if (position > 1)
        {
            Assert.Null(cluster[position - 1].Directory.Find(ghost.Id));
        }

        await cluster.WaitForNoActiveTunnelsAsync(deadline.Token);
        cluster.Logs.AssertNoUnexpectedWarnings(logs, TunnelReport);
    }

    [Fact]
    public async Task A_stopped_hop_the_previous_relay_still_lists_is_named_as_unreachable()
    {
        await using var cluster = await TestCluster.StartAsync(5);
        var logs = cluster.Logs.Position;
        using var deadline = TestTimeouts.After(30);
        var origin = cluster[0];
        await cluster.StopAsync(3);

        var failure = await Assert.ThrowsAsync<TunnelException>(() => origin.Tunnels.RoundTripAsync(
            new TunnelRequest { Route = [cluster[1].Id, cluster[2].Id, cluster[3].Id, cluster[4].Id] }, new byte[64], cancellationToken: deadline.Token));
        output.WriteLine($"stopped hop 3: {failure.Kind.ToTag()} at hop {failure.Hop}");

        Assert.Equal(3, failure.Hop);
        Assert.Contains(failure.Kind, new[] { TunnelErrorKind.NextHopUnreachable, TunnelErrorKind.LinkLost });
        await cluster.WaitForNoActiveTunnelsAsync(deadline.Token);
        cluster.Logs.AssertNoUnexpectedWarnings(logs, TunnelReport);
    }
}
