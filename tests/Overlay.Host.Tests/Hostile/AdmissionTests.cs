using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Grpc.Health.V1;
using Grpc.Net.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Overlay.Errors;
using Overlay.Host.Admission;
using Overlay.Host.Tests.Infrastructure;
using Overlay.Host.Tunnels;
using Overlay.Onion;
using Overlay.Replies;

namespace Overlay.Host.Tests.Hostile;

/// <summary>
/// Strangers that hold resources instead of sending bad bytes: slow or absent headers, abandoned
/// streams, connection floods. Each runs against real nodes; the hostile client connects from its own
/// loopback address, so it is another previous hop (fairness key) than the cluster's nodes.
/// </summary>
public sealed class AdmissionTests(HostileFixture fixture, ITestOutputHelper output) : IClassFixture<HostileFixture>
{
    private const int Ok = 0;
    private const int DeadlineExceeded = 4;
    private const int ResourceExhausted = 8;
    private const int Unimplemented = 12;

    private static readonly IPAddress Stranger = IPAddress.Parse("127.0.0.2");

    private TestCluster Cluster => fixture.Cluster;

    private ClusterNode Target => Cluster[1];

    [Fact]
    public async Task A_header_sent_one_byte_per_second_is_ended_by_the_header_timeout()
    {
        using var client = new RawLinkClient(Target.LinkEndpoint, Stranger);
        using var deadline = TestTimeouts.After(20);
        using var call = await client.OpenAsync(RawLinkClient.Relay, deadline.Token);
        var frame = RawCall.Frame(RawProtobuf.LinkMessage(new byte[HostileWire.HeaderSize(Target)], default));
        var outcome = call.OutcomeAsync();
        var sent = 0;
        // One byte a second (the attack's own pace, not a wait for an event) until the node gives up:
        // the default header timeout (2 s) allows a few.
        using var pace = new PeriodicTimer(TimeSpan.FromSeconds(1));
        while (!outcome.IsCompleted && sent < 10)
        {
            if (!await call.TryWriteAsync(frame.AsMemory(sent, 1)))
            {
                break; // the node ended the stream between our check and this write: its outcome says why
            }

            sent++;

            await Task.WhenAny(outcome, pace.WaitForNextTickAsync(deadline.Token).AsTask());
        }

        var result = await outcome.WaitAsync(deadline.Token);
        output.WriteLine($"ended after {sent} bytes: {result}");
        // The node ended it long before the sender would have given up (10 bytes); how many bytes got in
        // first depends on two clocks on a shared machine, so only that bound is asserted.
        Assert.InRange(sent, 1, 9);
        MalformedInputTests.AssertRefused(result, DeadlineExceeded, TunnelErrorKind.DeadlineExceeded);
    }

    [Fact]
    public async Task The_link_endpoint_serves_health_check_but_not_watch()
    {
        using var client = new RawLinkClient(Target.LinkEndpoint, Stranger);
        using var deadline = TestTimeouts.After(20);

        var check = await client.CallAsync("/grpc.health.v1.Health/Check", [[]], deadline.Token);
        var watch = await client.CallAsync("/grpc.health.v1.Health/Watch", [[]], deadline.Token);

        Assert.Equal(Ok, check.Status);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, HealthCheckResponse.Parser.ParseFrom(check.Messages.Single()).Status);
        Assert.Equal(Unimplemented, watch.Status);
    }

    [Fact]
    public async Task A_reply_block_header_whose_reply_id_the_node_does_not_hold_is_refused_as_destination_refused()
    {
        // A well-formed reply-block header sealed to the node, but made by a stranger: it passes every check of
        // the header and must still get a typed refusal, since its reply id is none of the node's own blocks.
        using var deadline = TestTimeouts.After(30);
        var builder = new OnionHeaderBuilder(Target.Node.State.Network);
        using var block = ReplyBlocks.Create(builder, [Target.Descriptor], DeadlineClass.Seconds30, DateTimeOffset.UtcNow.AddHours(1), out var secret);
        using var owned = secret;
        using var client = new RawLinkClient(Target.LinkEndpoint, Stranger);

        var outcome = await client.CallAsync(RawLinkClient.Relay, [RawProtobuf.LinkMessage(block.Header.ToArray(), default)], deadline.Token);

        Assert.True(outcome.OverlayError == (int)TunnelErrorKind.DestinationRefused, outcome.ToString());
    }

    [Fact]
    [Trait("Category", "Heavy")]
    public async Task Ten_thousand_abandoned_streams_leave_memory_bounded_and_the_node_serving()
    {
        const int streams = 10_000;
        const int concurrency = 200;
        using var deadline = TestTimeouts.After(120);
        var admission = Target.Node.Services.GetRequiredService<LinkAdmission>();
        var before = GC.GetTotalMemory(forceFullCollection: true);
        var logged = Cluster.Logs.Position;
        var refused = 0;
        var next = -1;
        // The client goes before the second measure, so what is left is the node's.
        using (var client = new RawLinkClient(Target.LinkEndpoint, IPAddress.Parse("127.0.0.3")))
        {
            await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
            {
                while (Interlocked.Increment(ref next) < streams)
                {
                    using var call = await client.OpenAsync(RawLinkClient.Relay, deadline.Token);
                    // Half a frame prefix, then gone: the node holds the stream until it notices.
                    if (!await call.TryWriteAsync(new byte[] { 0, 0 }))
                    {
                        Interlocked.Increment(ref refused); // refused before the bytes went out
                    }

                    call.Abort();
                }
            }));
        }

        await WaitUntilAsync(() => admission.PendingHeaders.Count == 0, "every abandoned stream released", deadline.Token);
        var after = GC.GetTotalMemory(forceFullCollection: true);
        output.WriteLine($"{streams} streams ({refused} refused before their bytes went out): managed heap {before / 1024} KiB -> {after / 1024} KiB");
        // A stranger resetting streams is not the node's fault: no error, no stack trace per stream, at most a
        // throttled line. (Kestrel may abort the flooding connection itself, once per connection: its own defence.)
        var errors = Cluster.Logs.WarningsSince(logged)
            .Where(e => (e.Level >= LogLevel.Error || e.Exception is not null) && !e.Category.StartsWith("Microsoft.AspNetCore.Server.Kestrel", StringComparison.Ordinal))
            .ToList();
        Assert.True(errors.Count == 0, $"{errors.Count} errors or stack traces logged for abandoned streams, the first: {errors.FirstOrDefault()}");
        Assert.True(after - before < 16L * 1024 * 1024, $"managed heap grew by {(after - before) / 1024} KiB");
        await AssertTunnelWorksAsync(deadline.Token);
    }

    [Fact]
    public async Task A_connection_flood_from_one_address_block_is_capped_and_the_control_port_answers()
    {
        await using var cluster = await TestCluster.StartAsync(2, new ClusterOptions
        {
            NodeDefaultHandler = true,
            Configuration = new Dictionary<string, string?> { ["Overlay:Link:MaxConnectionsPerPeer"] = "4" },
        });
        var target = cluster[1];
        using var deadline = TestTimeouts.After(30);
        var admission = target.Node.Services.GetRequiredService<LinkAdmission>();
        var flood = new List<Socket>();
        try
        {
            for (var i = 0; i < 40; i++)
            {
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
                flood.Add(socket);
                socket.Bind(new IPEndPoint(IPAddress.Parse("127.0.0.4"), 0));
                await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, target.LinkEndpoint.Port), deadline.Token);
            }

            // The node closes every connection past the cap before any HTTP/2 is spoken. Each close is
            // waited for as it comes, so a slow machine only makes this take longer.
            using var watching = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token);
            var pending = flood.Select(socket => ClosedByPeerAsync(socket, watching.Token)).ToList();
            var closed = 0;
            while (closed < flood.Count - 4 && pending.Count > 0)
            {
                var done = await Task.WhenAny(pending);
                pending.Remove(done);
                if (await done)
                {
                    closed++;
                }
            }

            Assert.Equal(flood.Count - 4, closed);
            await watching.CancelAsync();
            Assert.DoesNotContain(true, await Task.WhenAll(pending)); // the connections within the cap were still open
            Assert.Equal(4, admission.Connections.CountOf("127.0.0.4"));

            // Another listener, untouched; and the link still serves other previous hops.
            using var control = GrpcChannel.ForAddress(target.Node.Control.Url);
            var health = await new Health.HealthClient(control).CheckAsync(new HealthCheckRequest(), cancellationToken: deadline.Token);
            Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, health.Status);
            var trip = await cluster[0].Tunnels.RoundTripAsync(new TunnelRequest { Destination = target.Id, Relays = 0 }, new byte[] { 7 }, cancellationToken: deadline.Token);
            Assert.Equal(new byte[] { 7 }, trip.Reply);
        }
        finally
        {
            foreach (var socket in flood)
            {
                socket.Dispose();
            }
        }
    }

    [Fact]
    public async Task Headers_over_a_previous_hops_rate_are_held_and_served_not_refused()
    {
        await using var cluster = await TestCluster.StartAsync(2, new ClusterOptions
        {
            NodeDefaultHandler = true,
            Configuration = new Dictionary<string, string?>
            {
                // One token at once, then 20 a second; a header may be held for up to half the 2 s header timeout.
                ["Overlay:Tunnels:HeadersPerSecondPerPeer"] = "20",
                ["Overlay:Tunnels:HeaderBurstPerPeer"] = "1",
                ["Overlay:Tunnels:HeaderTimeout"] = "00:00:02",
            },
        });
        var target = cluster[1];
        using var deadline = TestTimeouts.After(60);
        using var client = new RawLinkClient(target.LinkEndpoint, Stranger);

        // Ten at once is eleven times the burst: each is held its turn at the rate, then processed (its MAC fails: Tampered).
        var outcomes = await Task.WhenAll(Enumerable.Range(0, 10).Select(_ => client.CallAsync(RawLinkClient.Relay, [FloodHeader(target)], deadline.Token)));
        Assert.All(outcomes, outcome => Assert.Equal((int)TunnelErrorKind.Tampered, outcome.OverlayError));

        // Beyond what the rate allows within the hold, the rest are refused Busy: 200 at once at 20 a second.
        var flood = await Task.WhenAll(Enumerable.Range(0, 200).Select(_ => client.CallAsync(RawLinkClient.Relay, [FloodHeader(target)], deadline.Token)));
        var processed = flood.Count(outcome => outcome.OverlayError == (int)TunnelErrorKind.Tampered);
        output.WriteLine($"200 headers at once at 20/s: {processed} processed, {flood.Length - processed} refused");
        Assert.All(flood.Where(outcome => outcome.OverlayError != (int)TunnelErrorKind.Tampered), outcome => MalformedInputTests.AssertRefused(outcome, ResourceExhausted, TunnelErrorKind.Busy));
        Assert.InRange(flood.Length - processed, 1, 200);
    }

    private static byte[] FloodHeader(ClusterNode target)
    {
        using var sample = HostileWire.HeaderTo(target);
        return RawProtobuf.LinkMessage(HostileWire.AgreementHeader(sample.Header), default);
    }

    [Fact]
    public async Task Streams_waiting_for_their_header_are_capped_per_previous_hop()
    {
        await using var cluster = await TestCluster.StartAsync(2, new ClusterOptions
        {
            NodeDefaultHandler = true,
            Configuration = new Dictionary<string, string?>
            {
                ["Overlay:Tunnels:MaxPendingHeadersPerPeer"] = "8",
                ["Overlay:Tunnels:HeaderTimeout"] = "00:00:20",
            },
        });
        var target = cluster[1];
        using var deadline = TestTimeouts.After(30);
        var admission = target.Node.Services.GetRequiredService<LinkAdmission>();
        using var client = new RawLinkClient(target.LinkEndpoint, Stranger);
        var waiting = new List<RawCall>();
        try
        {
            for (var i = 0; i < 8; i++)
            {
                waiting.Add(await client.OpenAsync(RawLinkClient.Relay, deadline.Token));
                await waiting[^1].WriteAsync(new byte[] { 0 });
            }

            await WaitUntilAsync(() => admission.PendingHeaders.CountOf(Stranger.ToString()) == 8, "eight streams waiting", deadline.Token);
            using var ninth = await client.OpenAsync(RawLinkClient.Relay, deadline.Token);
            MalformedInputTests.AssertRefused(await ninth.OutcomeAsync().WaitAsync(deadline.Token), ResourceExhausted, TunnelErrorKind.Busy);

            // Another previous hop is not held up by them.
            var trip = await cluster[0].Tunnels.RoundTripAsync(new TunnelRequest { Destination = target.Id, Relays = 0 }, new byte[] { 7 }, cancellationToken: deadline.Token);
            Assert.Equal(new byte[] { 7 }, trip.Reply);
        }
        finally
        {
            foreach (var call in waiting)
            {
                call.Dispose();
            }
        }

        await WaitUntilAsync(() => admission.PendingHeaders.Count == 0, "the abandoned streams released", deadline.Token);
    }

    [Fact]
    [Trait("Category", "Heavy")]
    public async Task A_reply_never_read_is_let_go_after_the_tunnel_deadline()
    {
        // The shortest deadline class (5 s): the destination echoes into a reply nobody reads until its
        // writes stall on flow control, and lets go once the deadline and the error cell's grace passed.
        using var keys = RawOrigin.Build(Target.Node.State.Network, [Target.Descriptor], Onion.DeadlineClass.Seconds5);
        using var client = new RawLinkClient(Target.LinkEndpoint, Stranger);
        using var deadline = TestTimeouts.After(40);
        var before = Target.Registry.Served;
        using var call = await client.OpenAsync(RawLinkClient.Relay, deadline.Token);
        await call.WriteMessageAsync(RawProtobuf.LinkMessage(keys.Header, default));
        var cellSize = HostileWire.CellSize(Target);
        var batch = new byte[8 * cellSize];
        var payload = new byte[keys.Codec.ForwardPayloadCapacity];
        Random.Shared.NextBytes(payload);
        // Far more than the reply's windows hold; the request stalls too once the echo stops reading.
        var writing = Task.Run(async () =>
        {
            for (var message = 0; message < 64; message++)
            {
                for (var i = 0; i < 8; i++)
                {
                    keys.Codec.SealForward(Cells.CellType.Data, payload, batch.AsSpan(i * cellSize, cellSize));
                }

                await call.WriteMessageAsync(RawProtobuf.LinkMessage(default, batch));
            }
        }, deadline.Token);

        await WaitUntilAsync(() => Target.Registry.Served > before, "the tunnel is served", deadline.Token);
        await WaitUntilAsync(() => Target.Registry.Served == before, "the stalled tunnel is let go", deadline.Token);
        try
        {
            await writing;
        }
        catch (Exception exception) when (exception is IOException or ObjectDisposedException or HttpRequestException)
        {
            // Expected: the node reset the stream under the stalled writes.
            output.WriteLine($"request writes ended by the reset: {exception.GetType().Name}");
        }
        await AssertTunnelWorksAsync(deadline.Token);
    }

    private async Task AssertTunnelWorksAsync(CancellationToken cancellationToken)
    {
        var trip = await Cluster[0].Tunnels.RoundTripAsync(new TunnelRequest { Destination = Cluster[2].Id, Relays = 1 }, new byte[] { 1, 2, 3 }, cancellationToken: cancellationToken);
        Assert.Equal(new byte[] { 1, 2, 3 }, trip.Reply);
    }

    // True once the peer closes the connection (end of stream or a reset); false when the peer speaks
    // instead, or the token ends the wait first.
    private static async Task<bool> ClosedByPeerAsync(Socket socket, CancellationToken cancellationToken)
    {
        try
        {
            return await socket.ReceiveAsync(new byte[1], SocketFlags.None, cancellationToken) == 0;
        }
        catch (SocketException)
        {
            return true;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    internal static async Task WaitUntilAsync(Func<bool> condition, string what, CancellationToken cancellationToken)
    {
        // The counters raise no event: poll briefly, bounded by the token.
        while (!condition())
        {
            try
            {
                await Task.Delay(20, cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                throw new TimeoutException(string.Create(CultureInfo.InvariantCulture, $"timed out waiting until {what}"));
            }
        }
    }
}
