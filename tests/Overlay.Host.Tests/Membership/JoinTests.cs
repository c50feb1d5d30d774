using Microsoft.Extensions.DependencyInjection;
using Overlay.Host.Directory;
using Overlay.Identity;
using static Overlay.Host.Tests.Membership.JoinSetup;

namespace Overlay.Host.Tests.Membership;

/// <summary>
/// Joining a private network with a token, over a TLS link to the authority (docs/protocol.md 4.1):
/// tokens have a use count and an expiry counted by their own authority alone, and may admit one
/// node only. Real nodes; the joining node's renewal service presents the token.
/// </summary>
public sealed class JoinTests : IDisposable
{
    private readonly DirectoryInfo _root = System.IO.Directory.CreateTempSubdirectory("overlay-join-");

    public void Dispose() => _root.Delete(recursive: true);

    private (string Directory, NodeId Key) AuthorityKey(string name) => JoinSetup.AuthorityKey(_root, name);

    private Dictionary<string, string?> Joiner(ClusterNode authority, string token) => JoinSetup.Joiner(_root, authority, token);

    [Fact]
    public async Task Nodes_join_with_a_token_until_its_uses_are_spent()
    {
        var (directory, key) = AuthorityKey("authority");
        var token = NewToken();
        await using var cluster = await TestCluster.StartAsync(1, AuthorityCluster(directory, key, configuration => AddToken(configuration, 0, token, uses: 2, DateTimeOffset.UtcNow.AddHours(1))));
        using var deadline = TestTimeouts.After(60);
        var authority = cluster[0];

        var first = await cluster.AddNodeAsync(Joiner(authority, token), deadline.Token);
        var second = await cluster.AddNodeAsync(Joiner(authority, token), deadline.Token);
        await WaitUpAsync(authority, first, deadline.Token);
        await WaitUpAsync(authority, second, deadline.Token);
        await WaitUpAsync(first, second, deadline.Token);
        await WaitUpAsync(second, first, deadline.Token);

        var third = await cluster.AddNodeAsync(Joiner(authority, token), deadline.Token);
        await WaitForRefusalAsync(cluster, third, "token_exhausted", deadline.Token);
        Assert.Null(authority.Directory.Find(third.Id));
        Assert.Null(third.Services.GetRequiredService<Host.Membership.MembershipBook>().Own);
    }

    public static TheoryData<string, string> RefusedTokens() => new()
    {
        { "forged", "unknown_token" },
        { "expired", "token_expired" },
        { "bound to another node", "token_for_another_node" },
    };

    [Theory]
    [MemberData(nameof(RefusedTokens))]
    public async Task A_bad_token_admits_nobody(string presented, string reason)
    {
        var (directory, key) = AuthorityKey("authority");
        var expired = NewToken();
        var bound = NewToken();
        using var other = NodeIdentity.Create();
        await using var cluster = await TestCluster.StartAsync(1, AuthorityCluster(directory, key, configuration =>
        {
            AddToken(configuration, 0, expired, uses: 5, DateTimeOffset.UtcNow.AddSeconds(-1));
            AddToken(configuration, 1, bound, uses: 5, DateTimeOffset.UtcNow.AddHours(1), other.Id);
        }));
        using var deadline = TestTimeouts.After(60);
        var token = presented switch
        {
            "expired" => expired,
            "bound to another node" => bound,
            _ => NewToken(),
        };

        var joiner = await cluster.AddNodeAsync(Joiner(cluster[0], token), deadline.Token);

        await WaitForRefusalAsync(cluster, joiner, reason, deadline.Token);
        Assert.Null(cluster[0].Directory.Find(joiner.Id));
    }

    [Fact]
    public async Task With_two_authorities_either_admits_and_neither_spends_the_other_s_tokens()
    {
        var (directoryA, keyA) = AuthorityKey("authority-a");
        var (directoryB, keyB) = AuthorityKey("authority-b");
        var tokenA = NewToken();
        var tokenB = NewToken();
        await using var cluster = await TestCluster.StartAsync(2, new ClusterOptions
        {
            Configuration = new Dictionary<string, string?>
            {
                ["Overlay:Network:Authorities:0"] = keyA.ToString(),
                ["Overlay:Network:Authorities:1"] = keyB.ToString(),
            },
            ConfigureNode = (index, configuration) =>
            {
                if (index < 2)
                {
                    configuration["Overlay:Membership:AuthorityKeyDirectory"] = index == 0 ? directoryA : directoryB;
                    AddToken(configuration, 0, index == 0 ? tokenA : tokenB, uses: 1, DateTimeOffset.UtcNow.AddHours(1));
                }
            },
        });
        using var deadline = TestTimeouts.After(60);
        var (a, b) = (cluster[0], cluster[1]);

        // B's token means nothing to A: refused, and B's single use is left untouched.
        var wrong = await cluster.AddNodeAsync(Joiner(a, tokenB), deadline.Token);
        await WaitForRefusalAsync(cluster, wrong, "unknown_token", deadline.Token);

        var throughA = await cluster.AddNodeAsync(Joiner(a, tokenA), deadline.Token);
        var throughB = await cluster.AddNodeAsync(Joiner(b, tokenB), deadline.Token);
        await WaitUpAsync(a, throughB, deadline.Token);
        await WaitUpAsync(b, throughA, deadline.Token);
        await WaitUpAsync(throughA, throughB, deadline.Token);
        Assert.Null(a.Directory.Find(wrong.Id));
    }

    [Fact]
    public async Task An_operator_admits_a_node_id_without_a_token_lists_it_and_revokes_it()
    {
        var (directory, key) = AuthorityKey("authority");
        await using var cluster = await TestCluster.StartAsync(1, AuthorityCluster(directory, key, controlEndpoints: true));
        using var deadline = TestTimeouts.After(60);
        var authority = cluster[0];
        using var control = new Infrastructure.ControlCall(authority.Node);

        var joiner = await cluster.AddNodeAsync(Joiner(authority, token: ""), deadline.Token);
        await WaitForRefusalAsync(cluster, joiner, "no_token", deadline.Token);

        await control.AdmitMemberAsync(new Protocol.Control.V1.AdmitMemberRequest { NodeId = joiner.Id.ToString() }, cancellationToken: deadline.Token);
        await WaitUpAsync(authority, joiner, deadline.Token);
        var listed = await control.ListMembersAsync(new Protocol.Control.V1.ListMembersRequest(), cancellationToken: deadline.Token);
        Assert.True(listed.PrivateNetwork);
        Assert.Equal(authority.Id.ToString(), listed.Self.NodeId);
        Assert.Contains(listed.Members, m => m.NodeId == joiner.Id.ToString() && m.Authority == key.ToString());
        Assert.Contains(joiner.Id.ToString(), listed.Admitted);

        var revoked = await control.RevokeMemberAsync(new Protocol.Control.V1.RevokeMemberRequest { NodeId = joiner.Id.ToString() }, cancellationToken: deadline.Token);
        Assert.Equal(joiner.Id.ToString(), revoked.Revocation.NodeId);
        Assert.Null(authority.Directory.Find(joiner.Id));
        listed = await control.ListMembersAsync(new Protocol.Control.V1.ListMembersRequest(), cancellationToken: deadline.Token);
        Assert.DoesNotContain(listed.Members, m => m.NodeId == joiner.Id.ToString());
        Assert.Empty(listed.Admitted);
        Assert.Single(listed.Revocations);

        // A revoked node cannot be admitted again while its revocation is kept.
        var again = await Assert.ThrowsAsync<Grpc.Core.RpcException>(async () =>
            await control.AdmitMemberAsync(new Protocol.Control.V1.AdmitMemberRequest { NodeId = joiner.Id.ToString() }, cancellationToken: deadline.Token));
        Assert.Equal("revoked", again.Trailers.GetValue("overlay-reason"));
    }

    [Fact]
    public async Task A_renewal_spends_no_token_and_a_revoked_node_cannot_renew()
    {
        var (directory, key) = AuthorityKey("authority");
        var token = NewToken();
        await using var cluster = await TestCluster.StartAsync(1, AuthorityCluster(directory, key, configuration => AddToken(configuration, 0, token, uses: 1, DateTimeOffset.UtcNow.AddHours(1))));
        using var deadline = TestTimeouts.After(60);
        var authority = cluster[0];
        var joiner = await cluster.AddNodeAsync(Joiner(authority, token), deadline.Token);
        await WaitUpAsync(authority, joiner, deadline.Token);
        var book = joiner.Services.GetRequiredService<Host.Membership.MembershipBook>();
        var held = book.Own!;

        // The renewal the node makes at half-life, made now: its membership, no token (the one use is spent).
        var renewal = new Protocol.V1.JoinRequest
        {
            SignedDescriptor = Google.Protobuf.ByteString.CopyFrom(joiner.Descriptor.Encoded.Span),
            Membership = Google.Protobuf.ByteString.CopyFrom(held.Encoded.Span),
        };
        using (var channel = joiner.Services.GetRequiredService<Host.Link.PeerChannels>().CreateTransient(authority.LinkEndpoint, authority.Id))
        {
            var renewed = await new Protocol.V1.Link.LinkClient(channel).JoinAsync(renewal, cancellationToken: deadline.Token);
            Assert.Equal(Overlay.Membership.MembershipError.None, book.SetOwn(renewed.Membership.Span));
        }

        authority.Services.GetRequiredService<Host.Membership.MembershipAuthority>().Revoke(joiner.Id);
        using (var channel = joiner.Services.GetRequiredService<Host.Link.PeerChannels>().CreateTransient(authority.LinkEndpoint, authority.Id))
        {
            var refused = await Assert.ThrowsAsync<Grpc.Core.RpcException>(async () =>
                await new Protocol.V1.Link.LinkClient(channel).JoinAsync(renewal, cancellationToken: deadline.Token));
            Assert.Equal(Grpc.Core.StatusCode.PermissionDenied, refused.StatusCode);
            Assert.Equal("revoked", refused.Trailers.GetValue("overlay-reason"));
        }
    }
}
