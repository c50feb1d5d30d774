using System.Diagnostics;
using Google.Protobuf;
using Overlay.Host.Tests.Infrastructure;
using Overlay.Host.Tunnels;
using Overlay.Protocol.V1;

namespace Overlay.Host.Tests;

/// <summary>Guarantees 2 and 10 (docs/protocol.md): nothing on a link varies with position or carries trace context.</summary>
public sealed class LinkPrivacyTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_field_the_schema_does_not_have_is_never_forwarded_to_the_next_hop()
    {
        // Protobuf keeps unknown fields and re-sends them: a predecessor could use one to tag a tunnel
        // for a later hop. Every message of this origin carries one; only hop 1 may ever see it.
        await using var cluster = await TestCluster.StartAsync(4);
        using var deadline = TestTimeouts.After(30);
        var hops = new[] { cluster[1], cluster[2], cluster[3] };
        var payload = new byte[20_000];
        Random.Shared.NextBytes(payload);
        static LinkMessage Tagged(LinkMessage message)
        {
            // Field 15, length-delimited: "tag", appended to the encoded message.
            byte[] unknown = [(15 << 3) | 2, 3, (byte)'t', (byte)'a', (byte)'g'];
            return LinkMessage.Parser.ParseFrom([.. message.ToByteArray(), .. unknown]);
        }

        Assert.NotEqual(new LinkMessage().CalculateSize(), Tagged(new LinkMessage()).CalculateSize());
        cluster.LinkMessages.Enabled = true;
        try
        {
            using var keys = RawOrigin.Build(cluster[0].Node.State.Network, [.. hops.Select(h => h.Descriptor)]);
            Assert.Equal(payload, await RawOrigin.RoundTripAsync(hops[0].LinkEndpoint, keys, payload, deadline.Token, Tagged));
        }
        finally
        {
            cluster.LinkMessages.Enabled = false;
        }

        var tagged = cluster.LinkMessages.UnknownFieldsAt;
        output.WriteLine($"messages with an unknown field, by receiving node: {string.Join(", ", tagged.GroupBy(n => n).Select(g => $"{g.Key} {g.Count()}"))}");
        Assert.Contains(hops[0].Name, tagged);
        Assert.All(tagged, node => Assert.Equal(hops[0].Name, node));
    }

    [Fact]
    public async Task No_link_request_carries_a_trace_context_or_a_deadline_even_with_an_ambient_activity()
    {
        // Sample every source, as an OpenTelemetry setup would: ASP.NET Core, HttpClient, gRPC and
        // the node all create activities, so any header injection that can happen, happens.
        using var listener = new ActivityListener
        {
            ShouldListenTo = _ => true,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
        };
        ActivitySource.AddActivityListener(listener);
        await using var cluster = await TestCluster.StartAsync(6);
        using var deadline = TestTimeouts.After(30);
        var origin = cluster[0];
        var request = new byte[50_000];
        Random.Shared.NextBytes(request);

        cluster.Headers.Enabled = true;
        using (var ambient = new Activity("test.caller").SetIdFormat(ActivityIdFormat.W3C).Start())
        {
            ambient.TraceStateString = "caller=secret";
            ambient.AddBaggage("caller", "secret");
            Assert.Same(ambient, Activity.Current);

            var explicitRoute = await origin.Tunnels.RoundTripAsync(
                new TunnelRequest { Route = [cluster[1].Id, cluster[2].Id, cluster[3].Id, cluster[4].Id], Deadline = TimeSpan.FromSeconds(20) }, request, cancellationToken: deadline.Token);
            Assert.Equal(request, explicitRoute.Reply);
            var randomRoute = await origin.Tunnels.RoundTripAsync(new TunnelRequest { Destination = cluster[5].Id, Relays = 4 }, request, cancellationToken: deadline.Token);
            Assert.Equal(request, randomRoute.Reply);
            Assert.Same(ambient, Activity.Current);
        }

        cluster.Headers.Enabled = false;
        var linkRequests = cluster.Headers.Requests.Where(r => r.Path.StartsWith("/overlay.v1.Link/", StringComparison.Ordinal)).ToList();
        var relayRequests = linkRequests.Where(r => r.Path == "/overlay.v1.Link/Relay").ToList();
        output.WriteLine($"{relayRequests.Count} Relay requests and {linkRequests.Count - relayRequests.Count} other Link requests recorded; headers seen: " +
            string.Join(", ", linkRequests.SelectMany(r => r.Headers.Keys).Distinct(StringComparer.OrdinalIgnoreCase).Order(StringComparer.Ordinal)));

        // The recorder saw every hop of both tunnels, with their headers.
        Assert.True(relayRequests.Count >= 4 + 5, $"only {relayRequests.Count} Relay requests were recorded");
        foreach (var hop in Enumerable.Range(1, 4))
        {
            Assert.Contains(relayRequests, r => r.Node == cluster[hop].Name);
        }

        Assert.All(relayRequests, r => Assert.Equal("application/grpc", r.Headers["content-type"]));
        foreach (var linkRequest in linkRequests)
        {
            foreach (var name in ForbiddenLinkHeaders.In(linkRequest.Headers.Keys))
            {
                Assert.Fail($"{linkRequest.Node} received {name}: {linkRequest.Headers[name]} on {linkRequest.Path}");
            }
        }
    }
}
