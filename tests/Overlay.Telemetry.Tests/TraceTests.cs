using System.Diagnostics;
using System.Security.Cryptography;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Trace;
using Overlay.Errors;
using Overlay.Host.Tunnels;

[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace Overlay.Telemetry.Tests;

public sealed class TraceTests
{
    [Fact]
    public async Task Default_mode_gives_every_hop_a_private_trace_that_only_the_origin_links()
    {
        await using var cluster = await TracedCluster.StartAsync(10);
        var origin = cluster.Nodes[0];
        var destination = cluster.Nodes[9];

        // An ambient, recorded context: HttpClient would inject it into link calls if it could.
        using var ambient = new Activity("test.caller").SetIdFormat(ActivityIdFormat.W3C).Start();
        ambient.ActivityTraceFlags = ActivityTraceFlags.Recorded;
        var trip = await origin.Tunnels.RoundTripAsync(new TunnelRequest { Destination = destination.Id, Relays = 8 }, RandomNumberGenerator.GetBytes(64));
        ambient.Stop();

        var spans = await cluster.Receiver.WaitForAsync(
            s => s.Count(x => x.Name == "overlay.relay") >= 8 && s.Any(x => x.Name == "overlay.deliver") && s.Any(x => x.Name == "overlay.tunnel"),
            TestTimeouts.Seconds(20), () => cluster.Flush());

        // Each span once, and attributed to the node that made it.
        Assert.Equal(spans.Count, spans.Select(s => s.SpanId).Distinct().Count());
        Assert.All(spans.Where(s => s.Attribute("overlay.node.id") is not null), s => Assert.Equal(s.InstanceId, s.Attribute("overlay.node.id")));

        var tunnel = Assert.Single(spans, s => s.Name == "overlay.tunnel");
        Assert.Equal(origin.Id.ToString(), tunnel.InstanceId);
        Assert.Equal(Convert.ToHexStringLower(ambient.TraceId.ToHexString() is var t ? Convert.FromHexString(t) : []), tunnel.TraceId);
        Assert.Equal(9, tunnel.Span.Links.Count);

        var hopRoots = new List<ReceivedSpan>();
        for (var hop = 0; hop < trip.Route.Count; hop++)
        {
            var link = tunnel.Span.Links.Single(l => l.Attributes.Any(a => a.Key == "overlay.hop" && a.Value.IntValue == hop + 1));
            var root = Assert.Single(spans, s =>
                s.TraceId == Convert.ToHexStringLower(link.TraceId.Span) && s.ParentSpanId == Convert.ToHexStringLower(link.SpanId.Span));
            Assert.Equal(trip.Route[hop].ToString(), root.InstanceId);
            Assert.Equal(hop < 8 ? "overlay.relay" : "overlay.deliver", root.Name);
            Assert.False(root.IsError);
            hopRoots.Add(root);

            var children = spans.Where(s => s.ParentSpanId == root.SpanId).Select(s => s.Name).Order().ToArray();
            Assert.Equal(hop < 8
                ? new[] { "overlay.header.process", "overlay.link.connect", "overlay.relay.backward", "overlay.relay.forward" }
                : new[] { "overlay.handler", "overlay.header.process" }, children);
        }

        // No two hops, and no hop and the origin, share a trace: only the links tie them together.
        Assert.Equal(10, hopRoots.Select(s => s.TraceId).Append(tunnel.TraceId).Distinct().Count());

        var linkCalls = cluster.Requests.Where(r => r.Path.StartsWith("/overlay.v1.Link/Relay", StringComparison.Ordinal)).ToList();
        Assert.True(linkCalls.Count >= 9);
        Assert.All(linkCalls, call => Assert.Empty(ForbiddenLinkHeaders.In(call.Headers.Keys)));
    }

    [Fact]
    public async Task A_failed_tunnel_records_the_reason_on_the_origin_and_on_the_hop_that_saw_it()
    {
        await using var cluster = await TracedCluster.StartAsync(4);
        var dead = cluster.Nodes[2];
        var route = new[] { cluster.Nodes[1].Id, dead.Id, cluster.Nodes[3].Id };
        await dead.KillAsync();

        var failure = await Assert.ThrowsAsync<TunnelException>(() =>
            cluster.Nodes[0].Tunnels.RoundTripAsync(new TunnelRequest { Route = route }, RandomNumberGenerator.GetBytes(64)));
        Assert.Equal((TunnelErrorKind.NextHopUnreachable, 2), (failure.Kind, failure.Hop));

        var spans = await cluster.Receiver.WaitForAsync(
            s => s.Any(x => x.Name == "overlay.tunnel" && x.IsError) && s.Any(x => x.Name == "overlay.relay" && x.IsError),
            TestTimeouts.Seconds(20), () => cluster.Flush(except: dead));
        var tunnel = Assert.Single(spans, s => s.Name == "overlay.tunnel");
        Assert.Equal("next_hop_unreachable", tunnel.Attribute("error.type"));
        Assert.Equal("2", tunnel.Attribute("overlay.tunnel.failing_hop"));
        var relay = Assert.Single(spans, s => s.Name == "overlay.relay");
        Assert.Equal("next_hop_unreachable", relay.Attribute("error.type"));
        Assert.Equal("link.connect", relay.Attribute("overlay.tunnel.last_phase"));
    }

    [Fact]
    public async Task A_tunnel_that_reaches_its_deadline_ends_its_spans_as_timeouts_with_the_last_phase()
    {
        await using var cluster = await TracedCluster.StartAsync(4, services: i => i == 3
            ? s => s.AddSingleton<ITunnelHandler, SilentHandler>()
            : null);
        var route = new[] { cluster.Nodes[1].Id, cluster.Nodes[2].Id, cluster.Nodes[3].Id };
        var failure = await Assert.ThrowsAsync<TunnelException>(() => cluster.Nodes[0].Tunnels.RoundTripAsync(
            new TunnelRequest { Route = route, Deadline = TimeSpan.FromSeconds(5) }, RandomNumberGenerator.GetBytes(64)));
        Assert.Equal(TunnelErrorKind.DeadlineExceeded, failure.Kind);

        var spans = await cluster.Receiver.WaitForAsync(
            s => s.Any(x => x.Name == "overlay.tunnel") && s.Count(x => x.Name == "overlay.relay") == 2 && s.Any(x => x.Name == "overlay.deliver"),
            TestTimeouts.Seconds(20), () => cluster.Flush());
        var tunnel = Assert.Single(spans, s => s.Name == "overlay.tunnel");
        Assert.Equal("timeout", tunnel.Attribute("error.type"));
        Assert.Equal("request", tunnel.Attribute("overlay.tunnel.last_phase"));

        // The hops end too, each with a reason and the phase it was in: the deadline where it fired
        // first, or the origin's teardown that reached it a moment before its own deadline.
        foreach (var hop in spans.Where(s => s.Name is "overlay.relay" or "overlay.deliver"))
        {
            Assert.True(hop.IsError, $"{hop.Name} at {hop.InstanceId[..8]} did not end as an error");
            Assert.Contains(hop.Attribute("error.type"), new[] { "timeout", "cancelled" });
            Assert.NotNull(hop.Attribute("overlay.tunnel.last_phase"));
        }
    }

    /// <summary>Reads the request, then never answers.</summary>
    private sealed class SilentHandler : ITunnelHandler
    {
        public async Task HandleAsync(IncomingTunnel tunnel, CancellationToken cancellationToken)
        {
            var buffer = new byte[4096];
            while (await tunnel.ReadAsync(buffer, cancellationToken) > 0)
            {
            }

            await Task.Delay(Timeout.Infinite, cancellationToken);
        }
    }
}
