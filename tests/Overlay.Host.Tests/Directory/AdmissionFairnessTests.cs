using System.Globalization;
using Grpc.Core;
using Overlay.Errors;
using Overlay.Host.Directory;
using Overlay.Host.Link;
using Overlay.Host.Tests.Infrastructure;
using Overlay.Identity;
using Overlay.Protocol.V1;

namespace Overlay.Host.Tests.Directory;

/// <summary>
/// Thousands of identities served by one machine must not lock honest nodes out of a directory
/// nor fill their routes: admission is bounded per address block, a full directory gives up a
/// peer of its most crowded block (never a seed nor a peer carrying tunnels), and a route takes
/// one hop per /16.
/// </summary>
public sealed class AdmissionFairnessTests
{
    [Fact]
    public void Thousands_of_identities_from_one_host_get_one_blocks_share()
    {
        using var parts = new DirectoryParts();
        var admitted = 0;
        for (var i = 0; i < 2000; i++)
        {
            admitted += parts.Admit("203.0.113.5", 10_000 + i).Admitted ? 1 : 0;
        }

        Assert.Equal(new Overlay.Host.Options.DirectoryOptions().MaxPeersPerAddressBlock, admitted);

        // Honest nodes elsewhere are still admitted.
        for (var i = 1; i <= 50; i++)
        {
            Assert.True(parts.Admit(string.Create(CultureInfo.InvariantCulture, $"198.51.{i}.7")).Admitted);
        }
    }

    [Fact]
    public void A_full_directory_makes_room_for_a_newcomer_from_its_most_crowded_block()
    {
        using var parts = new DirectoryParts(o =>
        {
            o.Directory.MaxPeers = 64;
            o.Directory.MaxPeersPerAddressBlock = 16;
        });

        // One party fills the directory from four /24s.
        var fakes = new List<NodeDescriptor>();
        for (var i = 0; i < 64; i++)
        {
            var (descriptor, admitted) = parts.Admit(string.Create(CultureInfo.InvariantCulture, $"203.0.{i % 4}.{1 + (i / 4)}"));
            Assert.True(admitted);
            fakes.Add(descriptor);
        }

        Assert.Equal(64, parts.Directory.Count);

        // Before, a newcomer was refused at MaxPeers for ever; now each honest one displaces a fake.
        for (var i = 1; i <= 40; i++)
        {
            var (honest, admitted) = parts.Admit(string.Create(CultureInfo.InvariantCulture, $"198.51.{i}.7"));
            Assert.True(admitted, $"honest node {i} was refused");
            Assert.NotNull(parts.Directory.Find(honest.Id));
        }

        Assert.Equal(64, parts.Directory.Count);
        Assert.Equal(24, fakes.Count(f => parts.Directory.Find(f.Id) is not null));
        // Evenly: no block of the party kept more than its share.
        Assert.All(Enumerable.Range(0, 4), block =>
            Assert.Equal(6, fakes.Where((_, i) => i % 4 == block).Count(f => parts.Directory.Find(f.Id) is not null)));
    }

    [Fact]
    public void A_newcomer_from_a_block_as_crowded_as_any_is_refused_when_full()
    {
        using var parts = new DirectoryParts(o =>
        {
            o.Directory.MaxPeers = 8;
            o.Directory.MaxPeersPerAddressBlock = 8;
        });
        for (var i = 1; i <= 8; i++)
        {
            Assert.True(parts.Admit(string.Create(CultureInfo.InvariantCulture, $"198.51.{i}.7")).Admitted);
        }

        // Every block holds one: trading one for another gains nothing, so the directory stays as it is.
        Assert.False(parts.Admit("198.51.100.7").Admitted);
        Assert.Equal(8, parts.Directory.Count);
    }

    [Fact]
    public void Seeds_and_peers_carrying_tunnels_are_never_evicted()
    {
        var seedEndpoint = "http://203.0.0.1:7400";
        using var parts = new DirectoryParts(o =>
        {
            o.Directory.MaxPeers = 4;
            o.Directory.MaxPeersPerAddressBlock = 4;
            o.Directory.Seeds = [seedEndpoint];
        });
        var seed = parts.Descriptor(seedEndpoint);
        Assert.True(parts.Directory.AddConfirmed(seed, System.Net.IPAddress.Parse("203.0.0.1")));
        var busy = parts.Admit("203.0.0.2").Descriptor;
        var idle = parts.Admit("203.0.0.3").Descriptor;
        var idleToo = parts.Admit("203.0.0.4").Descriptor;

        // A tunnel hop open on the pooled channel to the busy peer (never connected: 203.0.0.0/24 is TEST-NET-ish
        // public space this test never reaches; the call is only counted, then disposed).
        using var call = parts.Channels.Client(busy.Id, busy.Endpoint).Relay(cancellationToken: new CancellationToken(canceled: true));
        Assert.Equal(1, parts.Channels.OpenCalls(busy.Id, busy.Endpoint));

        Assert.True(parts.Admit("198.51.1.7").Admitted);
        Assert.True(parts.Admit("198.51.2.7").Admitted);
        Assert.False(parts.Admit("198.51.3.7").Admitted);

        Assert.NotNull(parts.Directory.Find(seed.Id));
        Assert.NotNull(parts.Directory.Find(busy.Id));
        Assert.Null(parts.Directory.Find(idle.Id));
        Assert.Null(parts.Directory.Find(idleToo.Id));
    }

    [Fact]
    public async Task A_route_takes_one_hop_per_16()
    {
        using var parts = new DirectoryParts();
        // Ten peers of one party in one /16 (ten /24s), four elsewhere.
        for (var i = 0; i < 10; i++)
        {
            parts.Admit(string.Create(CultureInfo.InvariantCulture, $"203.0.{i}.9"));
        }

        foreach (var address in new[] { "198.51.100.1", "192.0.2.1", "100.128.0.1", "2001:db8::1" })
        {
            parts.Admit(address);
        }

        using var deadline = TestTimeouts.After(30);
        for (var attempt = 0; attempt < 200; attempt++)
        {
            var route = await parts.Routes.SelectAsync(null, 3, [], deadline.Token);
            var blocks = route.Select(d => PeerAddress.DiversityBlock(parts.Directory.Find(d.Id)!.Address!)).ToList();
            Assert.Equal(blocks.Count, blocks.Distinct().Count());
        }

        // Five blocks in all: five hops fit, six cannot, however many peers there are.
        await parts.Routes.SelectAsync(null, 4, [], deadline.Token);
        using var shortly = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        var failure = await Assert.ThrowsAsync<TunnelException>(() => parts.Routes.SelectAsync(null, 5, [], shortly.Token));
        Assert.Equal(TunnelErrorKind.NoRoute, failure.Kind);
    }

    [Fact]
    public async Task Route_diversity_can_be_switched_off_for_one_host_networks()
    {
        using var parts = new DirectoryParts(o => o.Directory.RouteDiversity = false);
        for (var i = 0; i < 8; i++)
        {
            parts.Admit(string.Create(CultureInfo.InvariantCulture, $"203.0.{i}.9"));
        }

        using var deadline = TestTimeouts.After(30);
        var route = await parts.Routes.SelectAsync(null, 6, [], deadline.Token);
        Assert.Equal(7, route.Count);
    }

    [Fact]
    public async Task Exchange_and_prove_are_rate_limited_per_source()
    {
        await using var cluster = await TestCluster.StartAsync(1, new ClusterOptions
        {
            Configuration = new Dictionary<string, string?>
            {
                ["Overlay:Directory:CallsPerSecondPerSource"] = "0.001",
                ["Overlay:Directory:CallBurstPerSource"] = "3",
            },
        });
        using var channel = TestLinkTls.Channel(cluster[0].LinkEndpoint);
        var link = new Protocol.V1.Link.LinkClient(channel);
        using var deadline = TestTimeouts.After(30);

        for (var i = 0; i < 3; i++)
        {
            await link.ExchangeAsync(new DescriptorExchange(), cancellationToken: deadline.Token);
        }

        // The bucket is empty (it refills once in 1000 s): both calls are refused, typed.
        var exchange = await Assert.ThrowsAsync<RpcException>(() => link.ExchangeAsync(new DescriptorExchange(), cancellationToken: deadline.Token).ResponseAsync);
        var prove = await Assert.ThrowsAsync<RpcException>(() => link.ProveAsync(
            new ProofRequest { Challenge = Google.Protobuf.ByteString.CopyFrom(new byte[32]) }, cancellationToken: deadline.Token).ResponseAsync);
        foreach (var refused in new[] { exchange, prove })
        {
            Assert.Equal(StatusCode.ResourceExhausted, refused.StatusCode);
            Assert.Equal(TunnelErrorKind.Busy, LinkErrors.ReasonOf(refused, TunnelErrorKind.Malformed));
            Assert.NotNull(refused.Trailers.GetValue(LinkErrors.TrailerName));
        }
    }
}
