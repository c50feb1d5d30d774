using System.Globalization;
using Google.Protobuf;
using Microsoft.Extensions.DependencyInjection;
using Overlay.Errors;
using Overlay.Host.Directory;
using Overlay.Host.Tests.Infrastructure;
using Overlay.Host.Tunnels;
using Overlay.Identity;
using Overlay.Protocol;
using Overlay.Protocol.V1;

namespace Overlay.Host.Tests.Directory;

/// <summary>
/// A gossiped endpoint must not make a node dial into its operator's networks: non-public
/// addresses are dialed only where Overlay:Link:AllowedPeerNetworks says so, checked on the
/// address a name resolves to, and a relay whose next hop is refused fails typed.
/// </summary>
public sealed class PeerDialTests
{
    // Loopback not allowed: only a documentation network nobody dials here (both single-host entries replaced).
    private static readonly Dictionary<string, string?> LoopbackRefused = new()
    {
        ["Overlay:Link:AllowedPeerNetworks:0"] = "192.0.2.0/24",
        ["Overlay:Link:AllowedPeerNetworks:1"] = "192.0.2.0/24",
    };

    [Fact]
    public async Task A_gossiped_private_endpoint_is_never_dialed_unless_allowed()
    {
        await using var recorder = new ConnectionRecorder();
        await using var cluster = await TestCluster.StartAsync(1, new ClusterOptions { Configuration = LoopbackRefused });
        var node = cluster[0];
        using var refusals = RefusedDials(node.Id);
        using var deadline = TestTimeouts.After(30);
        var logs = cluster.Logs.Position;

        using var literalOwner = NodeIdentity.Create();
        using var nameOwner = NodeIdentity.Create();
        var literal = Descriptor(literalOwner, $"https://127.0.0.1:{recorder.Port}");
        var name = Descriptor(nameOwner, $"https://localhost:{recorder.Port}");
        await GossipAsync(node, deadline.Token, literal, name);

        // The literal is dropped at once; the name is resolved at dial time and refused there.
        await cluster.Logs.WaitForAsync(e => e.Sequence >= logs && e.Message.Contains("127.0.0.1:" + recorder.Port.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal)
            && e.Message.Contains("non-public", StringComparison.Ordinal), "the literal endpoint refused", deadline.Token);
        await cluster.Logs.WaitForAsync(e => e.Sequence >= logs && e.EventId.Id == 330 && e.Message.Contains("localhost", StringComparison.Ordinal),
            "the dial to localhost refused", deadline.Token);
        await cluster.Logs.WaitForAsync(e => e.Sequence >= logs && e.EventId.Id == 302 && e.Message.Contains(nameOwner.Id.ToShortString(), StringComparison.Ordinal),
            "the proof of the localhost endpoint failed", deadline.Token);

        Assert.Equal(0, recorder.Connections);
        Assert.True(refusals.Count("non-public") >= 1);
        Assert.Null(node.Directory.Find(literal.Id));
        Assert.Null(node.Directory.Find(name.Id));
    }

    [Fact]
    public async Task A_gossiped_private_endpoint_is_dialed_where_allowed()
    {
        await using var recorder = new ConnectionRecorder();
        await using var cluster = await TestCluster.StartAsync(1);
        using var deadline = TestTimeouts.After(30);
        using var literalOwner = NodeIdentity.Create();
        using var nameOwner = NodeIdentity.Create();

        await GossipAsync(cluster[0], deadline.Token,
            Descriptor(literalOwner, $"https://127.0.0.1:{recorder.Port}"),
            Descriptor(nameOwner, $"https://localhost:{recorder.Port}"));

        await recorder.WaitForAsync(2, deadline.Token);
    }

    [Fact]
    public async Task A_relay_whose_next_hop_is_refused_fails_typed()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        var relay = await cluster.AddNodeAsync(new Dictionary<string, string?> { ["Overlay:Link:RefusedPeerNetworks:0"] = "127.0.0.0/8" });
        using var refusals = RefusedDials(relay.Id);
        using var deadline = TestTimeouts.After(30);
        var origin = cluster[0];
        var destination = cluster[2];
        // Each side learns the other's descriptor without a proof (the relay could not dial anyone to prove it).
        origin.Directory.AddConfirmed(relay.Descriptor, System.Net.IPAddress.Loopback);
        relay.Directory.AddConfirmed(destination.Descriptor, System.Net.IPAddress.Loopback);

        var failure = await Assert.ThrowsAsync<TunnelException>(() => origin.Tunnels.RoundTripAsync(
            new TunnelRequest { Route = [relay.Id, destination.Id] }, new byte[16], cancellationToken: deadline.Token));

        Assert.Equal(TunnelErrorKind.NextHopUnreachable, failure.Kind);
        Assert.Equal(2, failure.Hop);
        Assert.True(refusals.Count("refused-network") >= 1);
    }

    private static NodeDescriptor Descriptor(NodeIdentity owner, string endpoint)
    {
        var now = DateTimeOffset.UtcNow;
        using var onionKey = OnionKey.Create(1, now.AddMinutes(-1), now.AddHours(1));
        return NodeDescriptor.Create(owner, onionKey, new Uri(endpoint), NetworkParameters.Default, now);
    }

    // As a peer would: an Exchange call carrying the descriptors.
    private static async Task GossipAsync(ClusterNode node, CancellationToken cancellationToken, params NodeDescriptor[] descriptors)
    {
        using var channel = TestLinkTls.Channel(node.LinkEndpoint);
        var exchange = new DescriptorExchange();
        exchange.Known.AddRange(descriptors.Select(d => ByteString.CopyFrom(d.Encoded.Span)));
        await new Protocol.V1.Link.LinkClient(channel).ExchangeAsync(exchange, cancellationToken: cancellationToken);
    }

    private static NodeCounter RefusedDials(NodeId node) => new(node, "overlay.link.dials.refused", "overlay.dial.refusal");
}
