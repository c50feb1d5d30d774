using System.Security.Cryptography;
using System.Text;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Overlay.Errors;
using Overlay.Host.Directory;
using Overlay.Host.Link.Tls;
using Overlay.Host.Options;
using Overlay.Host.Tests.Infrastructure;
using Overlay.Host.Tunnels;
using Overlay.Identity;
using Overlay.Protocol.V1;

namespace Overlay.Host.Tests.Link;

/// <summary>
/// TLS links bound to node identities (docs/protocol.md 3.2), end to end on real Kestrel nodes:
/// the server learns who dials it and refuses non-nodes; the dialer refuses a node other than the
/// one it routes to, and the origin moves on with a typed reason; nothing on the wire is cleartext HTTP/2.
/// </summary>
public sealed class TlsLinkTests
{
    private const int ClientRefusedEvent = 341;
    private const int ServerRefusedEvent = 342;
    private const int OriginRetryEvent = 204;

    [Fact]
    public async Task The_link_endpoint_learns_the_dialer_s_node_id_from_its_certificate()
    {
        var seen = new PeerIds();
        var root = System.IO.Directory.CreateTempSubdirectory("overlay-tls-");
        await using var node = OverlayNode.Create(new OverlayNodeSettings
        {
            Configuration = SingleHostNetwork.With(new Dictionary<string, string?>
            {
                ["Overlay:DataDirectory"] = root.FullName,
                ["Overlay:Link:Url"] = "https://127.0.0.1:0",
            }),
            ConfigureServices = services => services.Configure<Grpc.AspNetCore.Server.GrpcServiceOptions>(g => g.Interceptors.Add<PeerRecorder>(seen)),
        });
        using var deadline = TestTimeouts.After(30);
        try
        {
            await node.StartAsync(deadline.Token);
            using var channel = TestLinkTls.Channel(node.LinkEndpoint);

            await new Protocol.V1.Link.LinkClient(channel).ExchangeAsync(new DescriptorExchange(), cancellationToken: deadline.Token);

            Assert.Equal(TestLinkTls.ClientId, Assert.Single(seen.Ids));
        }
        finally
        {
            await node.KillAsync();
            root.Delete(recursive: true);
        }
    }

    public static TheoryData<string, string> RefusedDialers() => new()
    {
        { "no certificate", "missing" },
        { "no identity extension", "missing_extension" },
        { "another node's id", "bad_signature" },
        { "expired", "expired" },
        { "not yet valid", "not_yet_valid" },
    };

    [Theory]
    [MemberData(nameof(RefusedDialers))]
    public async Task A_dialer_that_proves_no_node_id_is_refused_with_a_log_line_and_a_metric(string dialer, string reason)
    {
        await using var cluster = await TestCluster.StartAsync(1);
        var node = cluster[0];
        using var refusals = new NodeCounter(node.Id, "overlay.link.tls.refused", LinkPeerVerifier.ReasonTag);
        using var deadline = TestTimeouts.After(30);
        using var identity = NodeIdentity.Create();
        using var other = NodeIdentity.Create();
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var now = DateTimeOffset.UtcNow;
        using var certificate = dialer switch
        {
            "no certificate" => null,
            "no identity extension" => TestLinkTls.Certificate(identity, key, now.AddHours(-1), now.AddDays(1), withExtension: false),
            "another node's id" => TestLinkTls.Certificate(identity, key, now.AddHours(-1), now.AddDays(1), claimed: other.Id),
            "expired" => TestLinkTls.Certificate(identity, key, now.AddDays(-2), now.AddHours(-1)),
            _ => TestLinkTls.Certificate(identity, key, now.AddHours(1), now.AddDays(1)),
        };
        var options = TestLinkTls.Options(certificate);
        if (certificate is null)
        {
            options.LocalCertificateSelectionCallback = null;
        }

        using var channel = Grpc.Net.Client.GrpcChannel.ForAddress(node.LinkEndpoint, new Grpc.Net.Client.GrpcChannelOptions
        {
            HttpHandler = new SocketsHttpHandler { UseProxy = false, SslOptions = options },
        });

        await Assert.ThrowsAsync<RpcException>(() => new Protocol.V1.Link.LinkClient(channel).ExchangeAsync(new DescriptorExchange(), cancellationToken: deadline.Token).ResponseAsync);

        var logged = await cluster.Logs.WaitForAsync(e => e.EventId.Id == ClientRefusedEvent, "the refusal's log line", deadline.Token);
        Assert.Equal(LogLevel.Warning, logged.Level);
        Assert.Equal(1, refusals.Count(reason));
    }

    [Fact]
    public async Task A_node_answering_with_another_identity_is_refused_as_link_unauthenticated_and_the_origin_moves_to_another_route()
    {
        await using var cluster = await TestCluster.StartAsync(4);
        var origin = cluster[0];
        var destination = cluster[3];
        // The origin's view freezes: it keeps node 1's descriptor and learns nothing more.
        await origin.Node.Services.GetRequiredService<DirectoryService>().StopAsync(CancellationToken.None);
        var impersonated = cluster[1].Id;
        using var refusals = new NodeCounter(origin.Id, "overlay.link.tls.refused", LinkPeerVerifier.ReasonTag);

        // Node 1's endpoint now answers with a new identity (a restart with a lost key, or another machine on the address).
        await cluster.StopAsync(1);
        File.Delete(Path.Combine(KeyDirectory.PathIn(cluster[1].DataDirectory), NodeIdentity.FileName));
        await cluster.RestartAsync(1);
        Assert.NotEqual(impersonated, cluster[1].Id);
        using var deadline = TestTimeouts.After(60);

        // An explicit route is not retried: the failure is typed and names hop 1.
        var failure = await Assert.ThrowsAsync<TunnelException>(() =>
            origin.Tunnels.RoundTripAsync(new TunnelRequest { Route = [impersonated] }, "hello"u8.ToArray(), cancellationToken: deadline.Token));
        Assert.Equal(TunnelErrorKind.LinkUnauthenticated, failure.Kind);
        Assert.Equal(1, failure.Hop);
        var logged = await cluster.Logs.WaitForAsync(e => e.Node == origin.Name && e.EventId.Id == ServerRefusedEvent, "the dialer's refusal", deadline.Token);
        Assert.Contains(impersonated.ToShortString(), logged.Message, StringComparison.Ordinal);
        Assert.True(refusals.Count("wrong_node") >= 1);

        // A chosen route through it moves to another one: the relay is node 1's old descriptor or node 2,
        // drawn at random, until the old descriptor has been tried (then it is no longer up).
        var since = cluster.Logs.Position;
        for (var attempt = 0; attempt < 64 && !Retried(); attempt++)
        {
            var trip = await origin.Tunnels.RoundTripAsync(new TunnelRequest { Destination = destination.Id, Relays = 1 }, "hello"u8.ToArray(), cancellationToken: deadline.Token);
            Assert.Equal("hello"u8.ToArray(), trip.Reply);
            Assert.DoesNotContain(impersonated, trip.Route);
        }

        Assert.True(Retried(), "no route through the impersonated node was drawn");

        bool Retried() => cluster.Logs.Entries.Any(e => e.Sequence >= since && e.Node == origin.Name && e.EventId.Id == OriginRetryEvent
            && e.Message.Contains(TunnelErrorKind.LinkUnauthenticated.ToTag(), StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_capture_of_a_TLS_link_shows_no_cleartext_HTTP2(bool tls)
    {
        var options = tls ? null : new ClusterOptions { Configuration = new Dictionary<string, string?> { ["Overlay:Link:Url"] = "http://127.0.0.1:0" } };
        await using var cluster = await TestCluster.StartAsync(1, options);
        ClusterNode? behind = null;
        // The port the node bound (its LinkEndpoint is the advertised one, the forwarder's).
        await using var capture = new RecordingForwarder(() => new Uri(behind!.Node.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First()).Port);
        // Everyone reaches the new node through the forwarder: it advertises the forwarder's address.
        behind = await cluster.AddNodeAsync(new Dictionary<string, string?>
        {
            ["Overlay:Link:AdvertisedUrl"] = $"{(tls ? "https" : "http")}://127.0.0.1:{capture.Port}",
        });
        using var deadline = TestTimeouts.After(60);
        await cluster.WaitForMeshAsync(deadline.Token);
        var marker = Encoding.ASCII.GetBytes("a marker the capture must not show");

        var trip = await cluster[0].Tunnels.RoundTripAsync(new TunnelRequest { Destination = behind.Id, Relays = 0 }, marker, cancellationToken: deadline.Token);

        Assert.Equal(marker, trip.Reply);
        var sent = capture.ToTarget();
        var received = capture.FromTarget();
        Assert.NotEmpty(sent);
        var preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray();
        if (tls)
        {
            // Every connection starts with a TLS handshake record (content type 22, version 3.x).
            Assert.Equal([0x16, 0x03], sent[..2]);
            Assert.Equal(0x16, received[0]);
            Assert.Equal(-1, sent.AsSpan().IndexOf(preface));
            Assert.Equal(-1, sent.AsSpan().IndexOf("/overlay.v1.Link/"u8));
            Assert.Equal(-1, sent.AsSpan().IndexOf("application/grpc"u8));
        }
        else
        {
            // The control: the same capture of an h2c link shows the HTTP/2 preface in the clear.
            Assert.Equal(0, sent.AsSpan().IndexOf(preface));
        }

        Assert.Equal(-1, sent.AsSpan().IndexOf(marker));
        Assert.Equal(-1, received.AsSpan().IndexOf(marker));
    }

    /// <summary>The node ids the link endpoint attributed calls to.</summary>
    private sealed class PeerIds
    {
        private readonly List<NodeId?> _ids = [];

        public IReadOnlyList<NodeId?> Ids
        {
            get
            {
                lock (_ids)
                {
                    return [.. _ids];
                }
            }
        }

        public void Add(NodeId? id)
        {
            lock (_ids)
            {
                _ids.Add(id);
            }
        }
    }

    /// <summary>Records the node id the link endpoint attributes each unary call to.</summary>
    private sealed class PeerRecorder(PeerIds ids) : Interceptor
    {
        public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
        {
            ids.Add(LinkPeerIdentity.Of(context));
            return continuation(request, context);
        }
    }
}
