using System.Diagnostics;
using System.Security.Cryptography;
using Microsoft.Extensions.Options;
using Overlay.Host;
using Overlay.Host.Tunnels;
using Overlay.Identity;
using OtlpLink = Overlay.Telemetry.Tests.Otlp.Span.Types.Link;

namespace Overlay.Telemetry.Tests;

public sealed class SealedTraceTests
{
    [Fact]
    public async Task Sealed_mode_makes_one_fresh_trace_across_the_hops_that_advertise_it()
    {
        // Node 3 does not honour sealed contexts: it does not advertise them, and keeps its private trace.
        await using var cluster = await TracedCluster.StartAsync(5, i => Sealed(honour: i != 3), allowList: true);
        for (var i = 0; i < cluster.Nodes.Count; i++)
        {
            Assert.Equal(i != 3, cluster.Nodes[i].State.Descriptor!.Features.HasFlag(DescriptorFeatures.SealedTraceContext));
        }

        var route = new[] { cluster.Nodes[1].Id, cluster.Nodes[2].Id, cluster.Nodes[3].Id, cluster.Nodes[4].Id };
        await cluster.Nodes[0].Tunnels.RoundTripAsync(new TunnelRequest { Route = route }, RandomNumberGenerator.GetBytes(64));

        var spans = await WaitForTunnelsAsync(cluster, tunnels: 1, relays: 3);
        var tunnel = Assert.Single(spans, s => s.Name == "overlay.tunnel");
        var sealedRoot = SealedLink(tunnel);
        Assert.NotEqual(tunnel.TraceId, Hex(sealedRoot.TraceId));
        var roots = HopRoots(spans).ToDictionary(s => s.InstanceId);
        foreach (var honouring in new[] { 1, 2, 4 })
        {
            var root = roots[cluster.Nodes[honouring].Id.ToString()];
            Assert.Equal(Hex(sealedRoot.TraceId), root.TraceId);
            Assert.Equal(Hex(sealedRoot.SpanId), root.ParentSpanId);
        }

        AssertPrivateTrace(tunnel, hop: 3, roots[cluster.Nodes[3].Id.ToString()]);
    }

    [Fact]
    public async Task The_sealed_trace_is_a_fresh_random_root_per_tunnel_never_the_callers_trace()
    {
        await using var cluster = await TracedCluster.StartAsync(5, _ => Sealed(honour: true), allowList: true);
        var origin = cluster.Nodes[0];
        var route = new[] { cluster.Nodes[1].Id, cluster.Nodes[2].Id, cluster.Nodes[3].Id, cluster.Nodes[4].Id };

        // A recorded ambient context whose trace id the caller knows (an application span, or a control call's).
        using var ambient = new Activity("test.caller").SetIdFormat(ActivityIdFormat.W3C).Start();
        ambient.ActivityTraceFlags = ActivityTraceFlags.Recorded;
        var callerTrace = ambient.TraceId.ToHexString();
        for (var trip = 0; trip < 2; trip++)
        {
            await origin.Tunnels.RoundTripAsync(new TunnelRequest { Route = route }, RandomNumberGenerator.GetBytes(64));
        }

        ambient.Stop();

        var spans = await WaitForTunnelsAsync(cluster, tunnels: 2, relays: 3);
        var hopSpans = spans.Where(s => s.InstanceId != origin.Id.ToString()).ToList();
        Assert.NotEmpty(hopSpans);
        Assert.All(hopSpans, s => Assert.NotEqual(callerTrace, s.TraceId));

        // The origin's own span may hang under the caller's (it never leaves the node) and links to
        // its tunnel's sealed root, which every hop joined; each tunnel has a root of its own.
        var tunnels = spans.Where(s => s.Name == "overlay.tunnel").ToList();
        Assert.Equal(2, tunnels.Count);
        Assert.All(tunnels, t => Assert.Equal(callerTrace, t.TraceId));
        var sealedTraces = tunnels.Select(t => Hex(SealedLink(t).TraceId)).ToList();
        Assert.NotEqual(sealedTraces[0], sealedTraces[1]);
        var roots = HopRoots(spans).ToList();
        Assert.Equal(8, roots.Count);
        Assert.All(sealedTraces, trace => Assert.Equal(4, roots.Count(r => r.TraceId == trace)));
    }

    [Fact]
    public async Task A_hop_whose_descriptor_does_not_advertise_sealed_contexts_gets_none_even_if_it_would_honour_one()
    {
        await using var cluster = await TracedCluster.StartAsync(5, _ => Sealed(honour: true), allowList: true);
        var origin = cluster.Nodes[0];
        var quiet = cluster.Nodes[3];

        // The origin knows node 3 by a descriptor (signed by node 3, newer than its own) without the feature bit.
        var published = quiet.State.Descriptor!;
        var unadvertised = NodeDescriptor.Create(quiet.State.Identity, quiet.State.Keys.Current!.Key, published.Endpoint, quiet.State.Network,
            published.PublishedAt.AddSeconds(1));
        origin.Directory.AddConfirmed(unadvertised, System.Net.IPAddress.Loopback);
        Assert.Equal(DescriptorFeatures.None, origin.Directory.Find(quiet.Id)!.Descriptor.Features);

        var route = new[] { cluster.Nodes[1].Id, cluster.Nodes[2].Id, quiet.Id, cluster.Nodes[4].Id };
        await origin.Tunnels.RoundTripAsync(new TunnelRequest { Route = route }, RandomNumberGenerator.GetBytes(64));

        var spans = await WaitForTunnelsAsync(cluster, tunnels: 1, relays: 3);
        var tunnel = Assert.Single(spans, s => s.Name == "overlay.tunnel");
        var roots = HopRoots(spans).ToDictionary(s => s.InstanceId);

        // Node 3 honours any sealed context it reads: keeping its private trace shows its slot had none.
        AssertPrivateTrace(tunnel, hop: 3, roots[quiet.Id.ToString()]);
        foreach (var advertising in new[] { 1, 2, 4 })
        {
            Assert.Equal(Hex(SealedLink(tunnel).TraceId), roots[cluster.Nodes[advertising].Id.ToString()].TraceId);
        }
    }

    [Fact]
    public async Task Sealing_trace_contexts_without_a_controlled_membership_refuses_to_start()
    {
        var data = System.IO.Directory.CreateTempSubdirectory("overlay-telemetry-");
        try
        {
            // Validation runs as the node is built or started, before anything listens.
            var refusal = await Assert.ThrowsAsync<OptionsValidationException>(async () =>
            {
                await using var node = OverlayNode.Create(new OverlayNodeSettings
                {
                    Configuration = new Dictionary<string, string?>
                    {
                        ["Overlay:DataDirectory"] = data.FullName,
                        ["Overlay:Link:Url"] = "http://127.0.0.1:0",
                        ["Overlay:Telemetry:SealTraceContext"] = "true",
                        ["Logging:LogLevel:Default"] = "Warning",
                    },
                });
                using var start = new CancellationTokenSource(TestTimeouts.Seconds(30));
                await node.StartAsync(start.Token);
            });
            Assert.Contains("Overlay:Telemetry:SealTraceContext", refusal.Message, StringComparison.Ordinal);
            Assert.Contains("Overlay:Directory:AllowedNodeIds", refusal.Message, StringComparison.Ordinal);
        }
        finally
        {
            data.Delete(recursive: true);
        }
    }

    private static Dictionary<string, string?> Sealed(bool honour) => new()
    {
        ["Overlay:Telemetry:SealTraceContext"] = "true",
        ["Overlay:Telemetry:HonorSealedTraceContext"] = honour ? "true" : "false",
    };

    private static Task<IReadOnlyList<ReceivedSpan>> WaitForTunnelsAsync(TracedCluster cluster, int tunnels, int relays) =>
        cluster.Receiver.WaitForAsync(
            s => s.Count(x => x.Name == "overlay.relay") >= tunnels * relays && s.Count(x => x.Name == "overlay.deliver") >= tunnels
                && s.Count(x => x.Name == "overlay.tunnel") >= tunnels,
            TestTimeouts.Seconds(20), () => cluster.Flush());

    private static IEnumerable<ReceivedSpan> HopRoots(IEnumerable<ReceivedSpan> spans) => spans.Where(s => s.Name is "overlay.relay" or "overlay.deliver");

    // The origin's link to the sealed trace's root (the other links are the hops' private traces).
    private static OtlpLink SealedLink(ReceivedSpan tunnel) =>
        Assert.Single(tunnel.Span.Links, l => l.Attributes.Any(a => a.Key == "overlay.trace.sealed" && a.Value.BoolValue));

    // The hop's spans hang under the context derived from its tunnel key, which the origin links as hop N.
    private static void AssertPrivateTrace(ReceivedSpan tunnel, int hop, ReceivedSpan root)
    {
        var link = tunnel.Span.Links.Single(l => l.Attributes.Any(a => a.Key == "overlay.hop" && a.Value.IntValue == hop));
        Assert.Equal(Hex(link.TraceId), root.TraceId);
        Assert.Equal(Hex(link.SpanId), root.ParentSpanId);
    }

    private static string Hex(Google.Protobuf.ByteString bytes) => Convert.ToHexStringLower(bytes.Span);
}
