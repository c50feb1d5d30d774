using System.Diagnostics;
using Google.Protobuf;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Overlay.Host.Options;
using Overlay.Host.Tests.Infrastructure;
using Overlay.Host.Tunnels;
using Overlay.Identity;
using V1 = Overlay.Protocol.Control.V1;

namespace Overlay.Host.Tests;

/// <summary>Five nodes: node 0 is the origin, nodes 1-3 the relays, node 4 the destination.</summary>
public sealed class FiveNodeFixture : IAsyncLifetime
{
    internal TestCluster Cluster { get; private set; } = null!;

    public async Task InitializeAsync() => Cluster = await TestCluster.StartAsync(5);

    public async Task DisposeAsync() => await Cluster.DisposeAsync();
}

/// <summary>Guarantee 7 (docs/protocol.md): a tunnel is a stream (the reply starts before the request ends) with backpressure.</summary>
public sealed class StreamingTests(FiveNodeFixture fixture, ITestOutputHelper output) : IClassFixture<FiveNodeFixture>
{
    private const int Relays = 3;
    private const int Links = Relays + 1;

    private TestCluster Cluster => fixture.Cluster;

    private ClusterNode Origin => Cluster[0];

    private NodeId[] Route => [Cluster[1].Id, Cluster[2].Id, Cluster[3].Id, Cluster[4].Id];

    [Fact]
    public async Task A_short_request_travels_with_the_header_one_message_per_hop()
    {
        using var deadline = TestTimeouts.After(30);
        var request = new byte[5000];
        Random.Shared.NextBytes(request);
        var seen = Cluster.LinkMessages.Calls.Count;
        Cluster.LinkMessages.Enabled = true;
        try
        {
            var trip = await Origin.Tunnels.RoundTripAsync(new TunnelRequest { Route = Route }, request, cancellationToken: deadline.Token);
            Assert.Equal(request, trip.Reply);
            var calls = await Cluster.LinkMessages.WaitForCallsAsync(seen, Links, deadline.Token);
            Assert.All(calls, call => Assert.Equal(1, call.Messages));
            Assert.Equal(Links, calls.Select(c => c.Node).Distinct().Count());
        }
        finally
        {
            Cluster.LinkMessages.Enabled = false;
        }
    }

    [Fact]
    public async Task A_short_request_opened_through_the_control_api_travels_with_the_header_one_message_per_hop()
    {
        using var deadline = TestTimeouts.After(30);
        var request = new byte[5000];
        Random.Shared.NextBytes(request);
        using var control = new ControlCall(Origin.Node);
        var seen = Cluster.LinkMessages.Calls.Count;
        Cluster.LinkMessages.Enabled = true;
        try
        {
            using var call = control.OpenTunnel(cancellationToken: deadline.Token);
            var target = new V1.TunnelTarget();
            target.Route.AddRange(Route.Select(id => id.ToString()));
            await call.RequestStream.WriteAsync(new V1.OpenTunnelRequest { Open = target, Data = ByteString.CopyFrom(request), End = true }, deadline.Token);
            await call.RequestStream.CompleteAsync();
            var reply = new List<byte>();
            while (await call.ResponseStream.MoveNext(deadline.Token))
            {
                reply.AddRange(call.ResponseStream.Current.Data);
            }

            Assert.Equal(request, reply);
            var calls = await Cluster.LinkMessages.WaitForCallsAsync(seen, Links, deadline.Token);
            Assert.All(calls, call => Assert.Equal(1, call.Messages));
        }
        finally
        {
            Cluster.LinkMessages.Enabled = false;
        }
    }

    [Fact]
    public async Task A_short_round_trip_to_the_node_echo_costs_every_hop_one_message_each_way()
    {
        await using var cluster = await TestCluster.StartAsync(4, new ClusterOptions { NodeDefaultHandler = true });
        using var deadline = TestTimeouts.After(30);
        var request = new byte[3000];
        Random.Shared.NextBytes(request);
        cluster.LinkMessages.Enabled = true;

        var trip = await cluster[0].Tunnels.RoundTripAsync(new TunnelRequest { Route = [cluster[1].Id, cluster[2].Id, cluster[3].Id] }, request, cancellationToken: deadline.Token);

        Assert.Equal(request, trip.Reply);
        var calls = await cluster.LinkMessages.WaitForCallsAsync(0, 3, deadline.Token);
        Assert.All(calls, call => Assert.Equal((1, 1), (call.Messages, call.Replies)));
    }

    [Fact]
    public async Task A_full_message_of_request_with_the_header_fits_the_smallest_allowed_link_limit()
    {
        var largest = Protocol.LinkLimits.LargestMessage(Protocol.NetworkParameters.Default, 8);
        await using var cluster = await TestCluster.StartAsync(3, new ClusterOptions
        {
            Configuration = new Dictionary<string, string?> { ["Overlay:Link:MaxMessageBytes"] = largest.ToString(System.Globalization.CultureInfo.InvariantCulture) },
        });
        using var deadline = TestTimeouts.After(30);
        var request = new byte[cluster[0].Tunnels.MaxInitialDataBytes];
        Random.Shared.NextBytes(request);

        var trip = await cluster[0].Tunnels.RoundTripAsync(new TunnelRequest { Route = [cluster[1].Id, cluster[2].Id] }, request, cancellationToken: deadline.Token);

        Assert.Equal(request, trip.Reply);
    }

    [Fact]
    public async Task Initial_data_then_writes_arrive_in_order_and_limits_hold()
    {
        using var deadline = TestTimeouts.After(30);
        var request = new byte[70_000];
        Random.Shared.NextBytes(request);
        var tunnels = Origin.Tunnels;
        await using (var tunnel = await tunnels.OpenAsync(new TunnelRequest { Route = Route, InitialData = request.AsMemory(0, 1000) }, deadline.Token))
        {
            Assert.Equal(1000, tunnel.BytesSent);
            // Read while writing: the echo's reply must not have to wait in the route's windows.
            var reply = TunnelTraffic.ReadToEndAsync(tunnel, deadline.Token);
            await tunnel.WriteAsync(request.AsMemory(1000), final: true, deadline.Token);
            Assert.Equal(request, await reply);
        }

        await using (var complete = await tunnels.OpenAsync(new TunnelRequest { Route = Route, InitialData = request.AsMemory(0, 10), CompleteWithInitialData = true }, deadline.Token))
        {
            await Assert.ThrowsAsync<InvalidOperationException>(() => complete.WriteAsync(request.AsMemory(0, 1), cancellationToken: deadline.Token).AsTask());
            Assert.Equal(request[..10], await TunnelTraffic.ReadToEndAsync(complete, deadline.Token));
        }

        await Assert.ThrowsAsync<ArgumentException>(() => tunnels.OpenAsync(
            new TunnelRequest { Route = Route, InitialData = request.AsMemory(0, tunnels.MaxInitialDataBytes + 1) }, deadline.Token));
        await Cluster.WaitForNoActiveTunnelsAsync(deadline.Token);
    }

    [Fact]
    public async Task Streams_64_MiB_through_3_relays_and_the_reply_starts_before_the_request_ends()
    {
        const long total = 64L << 20;
        var logs = Cluster.Logs.Position;
        using var deadline = TestTimeouts.After(120);
        await using var tunnel = await Origin.Tunnels.OpenAsync(new TunnelRequest { Route = Route, Deadline = TimeSpan.FromMinutes(5) }, deadline.Token);
        var writer = new TunnelWriter(tunnel, total, seed: 64);
        var reader = new TunnelReader(tunnel);
        var clock = Stopwatch.StartNew();

        var writing = Task.Run(() => writer.RunAsync(deadline.Token));
        var replyHash = await reader.RunAsync(writer, deadline.Token);
        await writing;
        output.WriteLine($"64 MiB each way through {Relays} relays in {clock.Elapsed.TotalSeconds:F2} s ({total / clock.Elapsed.TotalSeconds / (1 << 20):F1} MiB/s); " +
            $"first reply bytes after {reader.WrittenAtFirstReply:N0} request bytes");

        Assert.Equal(total, writer.Written);
        Assert.Equal(total, reader.Received);
        Assert.Equal(writer.Hash, replyHash);
        Assert.False(reader.WriterFinishedAtFirstReply, "the first reply bytes arrived only after the whole request was written");
        Assert.InRange(reader.WrittenAtFirstReply, 1, total - 1);

        await tunnel.DisposeAsync();
        await Cluster.WaitForNoActiveTunnelsAsync(deadline.Token);
        Cluster.Logs.AssertNoUnexpectedWarnings(logs);
    }

    [Fact]
    public async Task A_stalled_origin_reader_stops_the_writer_within_the_flow_control_windows()
    {
        var windows = FlowControlWindows.Of(Origin);
        var bound = windows.OriginNotReading(Links);
        const long total = 16L << 20;
        var logs = Cluster.Logs.Position;
        using var deadline = TestTimeouts.After(60);
        await using var tunnel = await Origin.Tunnels.OpenAsync(new TunnelRequest { Route = Route, Deadline = TimeSpan.FromMinutes(5) }, deadline.Token);
        var writer = new TunnelWriter(tunnel, total, seed: 7);
        var writing = Task.Run(() => writer.RunAsync(deadline.Token));

        var stalledAt = await writer.AssertHeldAsync(windows.Window, bound, deadline.Token);
        output.WriteLine($"writer held at {stalledAt:N0} bytes; bound {bound:N0} ({windows}, {Links} links)");
        Assert.False(writer.Finished);

        // Unstall: everything flows again and arrives intact.
        var reader = new TunnelReader(tunnel);
        var replyHash = await reader.RunAsync(writer: null, deadline.Token);
        await writing;
        Assert.Equal(total, reader.Received);
        Assert.Equal(writer.Hash, replyHash);

        await tunnel.DisposeAsync();
        await Cluster.WaitForNoActiveTunnelsAsync(deadline.Token);
        Cluster.Logs.AssertNoUnexpectedWarnings(logs);
    }

    [Fact]
    public async Task A_stalled_destination_stops_the_writer_within_the_forward_windows()
    {
        var windows = FlowControlWindows.Of(Origin);
        var bound = windows.DestinationNotReading(Links);
        const long total = 16L << 20;
        var logs = Cluster.Logs.Position;
        using var deadline = TestTimeouts.After(60);
        var stall = Cluster.Handler.RegisterStall();
        await using var tunnel = await Origin.Tunnels.OpenAsync(new TunnelRequest { Route = Route, Deadline = TimeSpan.FromMinutes(5) }, deadline.Token);
        var writer = new TunnelWriter(tunnel, total, seed: 8) { Prefix = stall.Tag };
        var reader = new TunnelReader(tunnel);
        var writing = Task.Run(() => writer.RunAsync(deadline.Token));
        var reading = Task.Run(() => reader.RunAsync(writer: null, deadline.Token));

        await stall.Reached.WaitAsync(deadline.Token);
        var stalledAt = await writer.AssertHeldAsync(windows.Window, bound, deadline.Token);
        output.WriteLine($"writer held at {stalledAt:N0} bytes; bound {bound:N0}");
        Assert.Equal(0, reader.Received);

        stall.Release();
        var replyHash = await reading;
        await writing;
        Assert.Equal(total, reader.Received);
        Assert.Equal(writer.Hash, replyHash);

        await tunnel.DisposeAsync();
        await Cluster.WaitForNoActiveTunnelsAsync(deadline.Token);
        Cluster.Logs.AssertNoUnexpectedWarnings(logs);
    }

    [Fact]
    public async Task A_stalled_tunnel_does_not_stop_another_tunnel_on_the_same_connections()
    {
        var logs = Cluster.Logs.Position;
        using var deadline = TestTimeouts.After(60);
        var stalledTunnel = await Origin.Tunnels.OpenAsync(new TunnelRequest { Route = Route, Deadline = TimeSpan.FromMinutes(5) }, deadline.Token);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token);
        var writer = new TunnelWriter(stalledTunnel, 64L << 20, seed: 9);
        var writing = Task.Run(() => writer.RunAsync(stop.Token));
        var windows = FlowControlWindows.Of(Origin);
        var bound = windows.OriginNotReading(Links);
        var stalledAt = await writer.AssertHeldAsync(windows.Window, bound, deadline.Token);

        // Same origin, same route: the same HTTP/2 connection at every hop.
        using var other = TestTimeouts.After(10);
        await using (var tunnel = await Origin.Tunnels.OpenAsync(new TunnelRequest { Route = Route }, other.Token))
        {
            var otherWriter = new TunnelWriter(tunnel, 256 * 1024, seed: 10);
            var otherReader = new TunnelReader(tunnel);
            var otherWriting = Task.Run(() => otherWriter.RunAsync(other.Token));
            var hash = await otherReader.RunAsync(otherWriter, other.Token);
            await otherWriting;
            Assert.Equal(otherWriter.Hash, hash);
        }

        // The other tunnel's traffic did not unstall this one: it is still held within its windows.
        output.WriteLine($"stalled tunnel at {stalledAt:N0} bytes; the other tunnel completed; stalled writer now at {writer.Written:N0}");
        Assert.InRange(writer.Written, stalledAt, bound);
        Assert.False(writer.Finished);

        // Tear the stalled tunnel down: every hop lets go of it.
        await stop.CancelAsync();
        var abandoned = await Record.ExceptionAsync(() => writing);
        Assert.True(abandoned is OperationCanceledException or Errors.TunnelException, $"the cancelled writer ended with {abandoned}");
        await stalledTunnel.DisposeAsync();
        await Cluster.WaitForNoActiveTunnelsAsync(deadline.Token);

        // The hops report the abandoned tunnel (relay: the previous hop left; destination: cancelled), nothing else.
        Cluster.Logs.AssertNoUnexpectedWarnings(logs, e => e.EventId.Id is 201 or 202);
    }
}
