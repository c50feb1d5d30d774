using System.Buffers.Binary;
using Microsoft.Extensions.DependencyInjection;
using Overlay.Errors;
using Overlay.Host.Keys;
using Overlay.Host.Replies;
using Overlay.Host.Tunnels;
using Overlay.Identity;
using Overlay.Onion;
using Overlay.Replies;

namespace Overlay.Host.Tests.Replies;

/// <summary>
/// Replies over reply blocks between real nodes (docs/protocol.md §7.8): the maker keeps the block's
/// secret, the holder sends one reply over the route the maker chose, the maker opens it and sends the
/// receipt. Single use, expiry, key rotation and restarts, each with the typed failure it ends in.
/// </summary>
public sealed class ReplyRouteTests(ITestOutputHelper output)
{
    private const string RelayPath = "/overlay.v1.Link/Relay";

    [Fact]
    public async Task A_reply_arrives_over_a_route_disjoint_from_the_forward_one()
    {
        await using var cluster = await TestCluster.StartAsync(6);
        using var deadline = TestTimeouts.After(60);
        var maker = cluster[0];
        var store = Store(maker);

        // The forward message: through two relays to a destination, one-way.
        await using var forward = await maker.Tunnels.OpenAsync(new TunnelRequest { Relays = 2, Mode = TunnelMode.OneWay }, deadline.Token);
        await forward.WriteAsync("the question"u8.ToArray(), final: true, deadline.Token);
        Assert.Equal(0, await forward.ReadAsync(new byte[1], deadline.Token));

        var made = await store.CreateAsync(2, forward.Route, deadline.Token);
        var encoded = Encode(made);
        var replyRelays = made.Route.Take(made.Route.Count - 1).ToList();
        output.WriteLine($"forward: {string.Join(" -> ", forward.Route.Select(Name(cluster)))}; reply: {string.Join(" -> ", made.Route.Select(Name(cluster)))}");
        Assert.Equal(maker.Id, made.Route[^1]);
        Assert.Equal(2, replyRelays.Count);
        Assert.Empty(replyRelays.Intersect(forward.Route));

        // The destination replies over the block; only the reply route's relays and the maker carry it.
        var replier = cluster[forward.Destination];
        using var block = Parse(replier, encoded);
        var waiting = store.WaitAsync(made.Handle, abandonOnCancel: true, deadline.Token);
        cluster.Headers.Enabled = true;
        var sent = await replier.Tunnels.SendReplyAsync(block, "the answer"u8.ToArray(), store.MaxReplyBytes, deadline.Token);
        cluster.Headers.Enabled = false;

        var reply = await waiting.WaitAsync(deadline.Token);
        output.WriteLine($"the reply over 2 relays was confirmed by its maker's receipt after {sent.Elapsed.TotalMilliseconds:F1} ms");
        Assert.Equal("the answer"u8.ToArray(), reply.Data);
        Assert.Equal(replyRelays[0], sent.FirstHop);
        var carriers = cluster.Headers.Requests.Where(r => r.Path == RelayPath).Select(r => r.Node).ToList();
        Assert.Equal(made.Route.Select(id => cluster[id].Name).Order(), carriers.Order());
        Assert.Equal(0, store.Count);
    }

    [Fact]
    public async Task A_block_used_twice_is_refused_at_its_first_hop_and_its_secret_is_gone()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        using var deadline = TestTimeouts.After(60);
        var (maker, relay, replier) = (cluster[0], cluster[1], cluster[2]);
        var store = Store(maker);
        var made = await store.CreateAsync(1, [replier.Id], deadline.Token);
        Assert.Equal([relay.Id, maker.Id], made.Route);
        Assert.Single(SecretFiles(maker));
        var encoded = Encode(made);

        using (var block = Parse(replier, encoded))
        {
            await replier.Tunnels.SendReplyAsync(block, new byte[100], store.MaxReplyBytes, deadline.Token);
        }

        Assert.Equal(100, (await store.WaitAsync(made.Handle, abandonOnCancel: true, deadline.Token)).Data.Length);
        Assert.Empty(SecretFiles(maker));

        using var again = Parse(replier, encoded);
        var refused = await Assert.ThrowsAsync<TunnelException>(() => replier.Tunnels.SendReplyAsync(again, new byte[100], store.MaxReplyBytes, deadline.Token));
        Assert.Equal((TunnelErrorKind.Replayed, 1), (refused.Kind, refused.Hop));
    }

    [Fact]
    public async Task An_expired_block_is_refused_by_its_holder_and_by_its_maker_whatever_the_block_says()
    {
        await using var cluster = await TestCluster.StartAsync(2, new ClusterOptions
        {
            Configuration = new Dictionary<string, string?> { ["Overlay:Replies:MaxLifetime"] = "00:00:01" },
        });
        using var deadline = TestTimeouts.After(60);
        var (maker, replier) = (cluster[0], cluster[1]);
        var store = Store(maker);
        // No relays: the maker is the first hop, so its own refusal reaches the holder typed.
        var made = await store.CreateAsync(0, [replier.Id], deadline.Token);
        var encoded = Encode(made);
        using var block = Parse(replier, encoded);
        await WaitUntilAsync(() => DateTimeOffset.UtcNow >= block.ExpiresAt, deadline.Token);

        var atHolder = await Assert.ThrowsAsync<TunnelException>(() => replier.Tunnels.SendReplyAsync(block, new byte[10], store.MaxReplyBytes, deadline.Token));
        Assert.Equal(TunnelErrorKind.Expired, atHolder.Kind);

        // The expiry bytes are not authenticated: a holder that moves them on is refused by the maker.
        BinaryPrimitives.WriteInt64BigEndian(encoded.AsSpan(1 + NodeId.Size), DateTimeOffset.UtcNow.AddHours(1).ToUnixTimeSeconds());
        using var rewritten = Parse(replier, encoded);
        var atMaker = await Assert.ThrowsAsync<TunnelException>(() => replier.Tunnels.SendReplyAsync(rewritten, new byte[10], store.MaxReplyBytes, deadline.Token));
        Assert.Equal((TunnelErrorKind.Expired, 1), (atMaker.Kind, atMaker.Hop));
        Assert.Empty(SecretFiles(maker));
    }

    [Fact]
    public async Task A_block_survives_a_key_rotation_of_its_relay_within_the_overlap_and_not_after_its_epoch_is_retired()
    {
        await using var cluster = await TestCluster.StartAsync(3, new ClusterOptions
        {
            Configuration = new Dictionary<string, string?>
            {
                ["Overlay:OnionKeys:MaxLiveEpochs"] = "2",
                ["Overlay:OnionKeys:MinEarlyRotationInterval"] = "00:00:00",
            },
        });
        using var deadline = TestTimeouts.After(60);
        var (maker, relay, replier) = (cluster[0], cluster[1], cluster[2]);
        var store = Store(maker);
        var first = await store.CreateAsync(1, [replier.Id], deadline.Token);
        var second = await store.CreateAsync(1, [replier.Id], deadline.Token);
        var rotations = relay.Services.GetRequiredService<OnionKeyService>();

        // One rotation: the block's epoch is the relay's previous one, still live in the overlap window.
        await rotations.RotateSoon().Rotated.WaitAsync(deadline.Token);
        using (var block = Parse(replier, Encode(first)))
        {
            await replier.Tunnels.SendReplyAsync(block, "in time"u8.ToArray(), store.MaxReplyBytes, deadline.Token);
        }

        Assert.Equal("in time"u8.ToArray(), (await store.WaitAsync(first.Handle, abandonOnCancel: true, deadline.Token)).Data);

        // A second: at most two epochs live, so the block's is retired before its overlap ends.
        await rotations.RotateSoon().Rotated.WaitAsync(deadline.Token);
        using var late = Parse(replier, Encode(second));
        var refused = await Assert.ThrowsAsync<TunnelException>(() => replier.Tunnels.SendReplyAsync(late, "too late"u8.ToArray(), store.MaxReplyBytes, deadline.Token));
        Assert.Equal((TunnelErrorKind.UnknownEpoch, 1), (refused.Kind, refused.Hop));
    }

    [Fact]
    public async Task Outstanding_secrets_survive_a_restart_of_their_maker_in_owner_only_files()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        using var deadline = TestTimeouts.After(90);
        var (maker, replier) = (cluster[0], cluster[2]);
        var made = await Store(maker).CreateAsync(1, [replier.Id], deadline.Token);
        var encoded = Encode(made);
        var file = Assert.Single(SecretFiles(maker));
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
        }

        await cluster.StopAsync(maker.Index);
        await cluster.RestartAsync(maker.Index, cancellationToken: deadline.Token);
        await cluster.WaitForMeshAsync(deadline.Token);
        var store = Store(maker);
        Assert.Equal(1, store.Count);

        using (var block = Parse(replier, encoded))
        {
            await replier.Tunnels.SendReplyAsync(block, "after the restart"u8.ToArray(), store.MaxReplyBytes, deadline.Token);
        }

        Assert.Equal("after the restart"u8.ToArray(), (await store.WaitAsync(made.Handle, abandonOnCancel: true, deadline.Token)).Data);
        Assert.Empty(SecretFiles(maker));
    }

    [Fact]
    public async Task The_store_refuses_a_block_beyond_its_limit_and_a_reply_beyond_its_size()
    {
        await using var cluster = await TestCluster.StartAsync(2, new ClusterOptions
        {
            Configuration = new Dictionary<string, string?> { ["Overlay:Replies:MaxOutstanding"] = "1", ["Overlay:Replies:MaxReplyBytes"] = "1000" },
        });
        using var deadline = TestTimeouts.After(60);
        var (maker, replier) = (cluster[0], cluster[1]);
        var store = Store(maker);
        var made = await store.CreateAsync(0, [], deadline.Token);

        var full = await Assert.ThrowsAsync<TunnelException>(() => store.CreateAsync(0, [], deadline.Token));
        Assert.Equal(TunnelErrorKind.LimitExceeded, full.Kind);
        Assert.Contains("Overlay:Replies:MaxOutstanding", full.Message, StringComparison.Ordinal);

        // The holder's own limit is its node's; the maker enforces its own whatever the holder allows.
        using var block = Parse(replier, Encode(made));
        var waiting = store.WaitAsync(made.Handle, abandonOnCancel: true, deadline.Token);
        var tooLarge = await Assert.ThrowsAsync<TunnelException>(() => replier.Tunnels.SendReplyAsync(block, new byte[1001], int.MaxValue, deadline.Token));
        output.WriteLine(tooLarge.Message);
        Assert.Equal((TunnelErrorKind.LimitExceeded, 1), (tooLarge.Kind, tooLarge.Hop));
        var spent = await Assert.ThrowsAsync<TunnelException>(() => waiting.WaitAsync(deadline.Token));
        Assert.Equal(TunnelErrorKind.LimitExceeded, spent.Kind);
        Assert.Equal(0, store.Count);
    }

    private static ReplyBlockStore Store(ClusterNode node) => node.Services.GetRequiredService<ReplyBlockStore>();

    private static Func<NodeId, string> Name(TestCluster cluster) => id => cluster[id].Name;

    private static byte[] Encode(OutstandingReply made)
    {
        using var block = made.Block;
        return block.Encode();
    }

    private static ReplyBlock Parse(ClusterNode holder, byte[] encoded)
    {
        Assert.Equal(TunnelErrorKind.None, ReplyBlock.TryParse(encoded, holder.Node.State.Network, DateTimeOffset.UtcNow, out var block));
        return block!;
    }

    private static string[] SecretFiles(ClusterNode node) =>
        System.IO.Directory.GetFiles(KeyDirectory.PathIn(node.DataDirectory), "reply-*");

    private static async Task WaitUntilAsync(Func<bool> condition, CancellationToken cancellationToken)
    {
        using var poll = new PeriodicTimer(TimeSpan.FromMilliseconds(50));
        while (!condition())
        {
            await poll.WaitForNextTickAsync(cancellationToken);
        }
    }
}
