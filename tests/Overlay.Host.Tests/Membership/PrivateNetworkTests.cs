using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.Extensions.DependencyInjection;
using Overlay.Errors;
using Overlay.Host.Directory;
using Overlay.Host.Membership;
using Overlay.Host.Tests.Hostile;
using Overlay.Host.Tests.Infrastructure;
using Overlay.Host.Tunnels;
using Overlay.Identity;
using Overlay.Membership;

namespace Overlay.Host.Tests.Membership;

/// <summary>
/// A private network of real nodes (docs/protocol.md 4.1): every link call needs a membership,
/// checked per call against the node id the TLS link proved; a node without one is never dialed
/// nor routed through, whatever a member gossips about it.
/// </summary>
public sealed class PrivateNetworkTests : IDisposable
{
    private const int PermissionDenied = 7;

    private readonly NodeIdentity _authority = NodeIdentity.Create();

    public void Dispose() => _authority.Dispose();

    public static TheoryData<string> RefusedMemberships() => ["none", "forged", "expired", "another node's"];

    [Theory]
    [MemberData(nameof(RefusedMemberships))]
    public async Task A_link_call_without_a_valid_membership_is_refused_as_not_a_member(string presented)
    {
        await using var cluster = await TestCluster.StartAsync(1, new ClusterOptions { Authority = _authority });
        var node = cluster[0];
        using var refusals = new NodeCounter(node.Id, "overlay.membership.refused", MembershipBook.ReasonTag);
        using var forger = NodeIdentity.Create();
        using var deadline = TestTimeouts.After(30);
        var endpoint = new Uri("https://127.0.0.1:1");
        var now = DateTimeOffset.UtcNow;
        byte[] membership = presented switch
        {
            "forged" => NodeMembership.Issue(forger, TestLinkTls.ClientId, endpoint, now.AddHours(-1), now.AddHours(1)).Encoded.ToArray(),
            "expired" => NodeMembership.Issue(_authority, TestLinkTls.ClientId, endpoint, now.AddHours(-3), now.AddHours(-1)).Encoded.ToArray(),
            "another node's" => NodeMembership.Issue(_authority, forger.Id, endpoint, now.AddHours(-1), now.AddHours(1)).Encoded.ToArray(),
            _ => [],
        };
        using var client = new RawLinkClient(node.LinkEndpoint);

        var exchange = await client.CallAsync(RawLinkClient.Exchange, [RawProtobuf.Field(3, membership)], deadline.Token);
        var prove = await client.CallAsync(RawLinkClient.Prove, [[.. RawProtobuf.Field(1, new byte[32]), .. RawProtobuf.Field(2, membership)]], deadline.Token);
        var relay = await client.CallAsync(RawLinkClient.Relay, [], deadline.Token);

        foreach (var outcome in new[] { exchange, prove, relay })
        {
            Assert.True(outcome.Status == PermissionDenied && outcome.OverlayError == (int)TunnelErrorKind.NotAMember, outcome.ToString());
        }

        // Relay presents nothing (a relay's caller is known from gossip or an earlier call): it counts as missing.
        var reason = presented switch
        {
            "forged" => "unknown_authority",
            "expired" => "expired",
            "another node's" => "wrong_node",
            _ => "missing",
        };
        Assert.Equal(reason == "missing" ? 3 : 2, refusals.Count(reason));
        Assert.Equal(3, refusals.Count("missing") + (reason == "missing" ? 0 : refusals.Count(reason)));
    }

    [Fact]
    public async Task A_member_s_calls_are_served()
    {
        await using var cluster = await TestCluster.StartAsync(1, new ClusterOptions { Authority = _authority });
        using var deadline = TestTimeouts.After(30);
        var now = DateTimeOffset.UtcNow;
        var membership = NodeMembership.Issue(_authority, TestLinkTls.ClientId, new Uri("https://127.0.0.1:1"), now.AddHours(-1), now.AddHours(1)).Encoded.ToArray();
        using var client = new RawLinkClient(cluster[0].LinkEndpoint);

        var exchange = await client.CallAsync(RawLinkClient.Exchange, [RawProtobuf.Field(3, membership)], deadline.Token);
        // Known now: a later call needs no membership of its own.
        var again = await client.CallAsync(RawLinkClient.Exchange, [[]], deadline.Token);

        Assert.True(exchange.Status == 0, exchange.ToString());
        Assert.True(again.Status == 0, again.ToString());
    }

    [Fact]
    public async Task An_unadmitted_node_is_never_dialed_nor_routed_through()
    {
        const int Members = 4;
        var calls = new CallCount();
        await using var cluster = await TestCluster.StartAsync(Members, new ClusterOptions
        {
            Authority = _authority,
            Admit = index => index < Members,
            ConfigureServices = (index, services) =>
            {
                if (index == Members)
                {
                    services.Configure<Grpc.AspNetCore.Server.GrpcServiceOptions>(g => g.Interceptors.Add<CallCounter>(calls));
                }
            },
        });
        using var seedRefusals = new NodeCounter(cluster[0].Id, "overlay.membership.refused", MembershipBook.ReasonTag);
        using var deadline = TestTimeouts.After(60);
        var outsider = await cluster.AddNodeAsync(cancellationToken: deadline.Token);

        // A member gossips the outsider's descriptor to the seed with no membership, a forged one and an expired one.
        using var forger = NodeIdentity.Create();
        var now = DateTimeOffset.UtcNow;
        var gossiper = NodeMembership.Issue(_authority, TestLinkTls.ClientId, new Uri("https://127.0.0.1:1"), now.AddHours(-1), now.AddHours(1)).Encoded.ToArray();
        var descriptor = outsider.Descriptor.Encoded.ToArray();
        using var client = new RawLinkClient(cluster.SeedEndpoint);
        foreach (var membership in new[]
        {
            Array.Empty<byte>(),
            NodeMembership.Issue(forger, outsider.Id, outsider.LinkEndpoint, now.AddHours(-1), now.AddHours(1)).Encoded.ToArray(),
            NodeMembership.Issue(_authority, outsider.Id, outsider.LinkEndpoint, now.AddHours(-3), now.AddHours(-1)).Encoded.ToArray(),
        })
        {
            var outcome = await client.CallAsync(RawLinkClient.Exchange, [[.. RawProtobuf.Field(2, descriptor), .. RawProtobuf.Field(3, gossiper), .. RawProtobuf.Field(4, membership)]], deadline.Token);
            Assert.True(outcome.Status == 0, outcome.ToString());
            Assert.False(cluster[0].Services.GetRequiredService<DirectoryService>().IsProving(outsider.Id));
        }

        // The outsider tries to join every gossip round (and warns that it has no membership): let three rounds pass, as members gossip on.
        const int MembershipMissingEvent = 353;
        var seen = 0L;
        for (var round = 0; round < 3; round++)
        {
            var after = seen;
            seen = (await cluster.Logs.WaitForAsync(e => e.Node == outsider.Name && e.EventId.Id == MembershipMissingEvent && e.Sequence > after,
                "the outsider's gossip round without a membership", deadline.Token)).Sequence;
        }

        Assert.True(seedRefusals.Count("missing") >= 1, "the seed refused none of the outsider's calls");

        // Tunnels across the members, with relays: none touches the outsider.
        for (var i = 1; i < Members; i++)
        {
            var trip = await cluster[0].Tunnels.RoundTripAsync(new TunnelRequest { Destination = cluster[i].Id, Relays = 2 }, "hello"u8.ToArray(), cancellationToken: deadline.Token);
            Assert.Equal("hello"u8.ToArray(), trip.Reply.ToArray());
        }

        Assert.Equal(0, calls.Count);
        Assert.All(cluster.Nodes.Take(Members), member => Assert.Null(member.Directory.Find(outsider.Id)));
        Assert.Equal(0, outsider.Directory.Count);

        // Admitted, it joins: the same network does dial it once it shows a membership.
        cluster.Admit(outsider);
        await TestCluster.WaitForDirectoryAsync(cluster[0], d => d.Find(outsider.Id)?.Status == PeerStatus.Up, "the admitted outsider in the seed's directory", deadline.Token);
        Assert.True(calls.Count > 0);
    }

    /// <summary>The link calls a node received.</summary>
    private sealed class CallCount
    {
        private int _count;

        public int Count => Volatile.Read(ref _count);

        public void Add() => Interlocked.Increment(ref _count);
    }

    /// <summary>Counts every link call into a <see cref="CallCount"/> (gRPC creates the interceptor per call).</summary>
    private sealed class CallCounter(CallCount calls) : Interceptor
    {
        public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
        {
            calls.Add();
            return continuation(request, context);
        }

        public override Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream,
            ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
        {
            calls.Add();
            return continuation(requestStream, responseStream, context);
        }
    }
}
