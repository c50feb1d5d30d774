using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Overlay.Host.Directory;
using Overlay.Host.Membership;
using Overlay.Host.Options;
using Overlay.Host.Tests.Hostile;
using Overlay.Identity;
using Overlay.Membership;
using Overlay.Protocol.V1;

namespace Overlay.Host.Tests.Membership;

/// <summary>
/// A directory exchange of a private network (docs/protocol.md 4.1) with many members: memberships
/// beside descriptors and revocations do not fit one message of a full exchange, so each answer
/// stays within the link's message limit, and a peer still learns every member over successive
/// exchanges (each answer is a fresh sample). A raw client asks a real node.
/// </summary>
public sealed class MembershipExchangeTests(ITestOutputHelper output) : IDisposable
{
    private const int Members = 40;
    private const int Revocations = 30;
    private const int MaxExchanges = 40;

    private readonly NodeIdentity _authority = NodeIdentity.Create();

    public void Dispose() => _authority.Dispose();

    [Fact]
    public async Task Every_answer_fits_the_message_limit_and_every_member_is_learned_over_successive_exchanges()
    {
        // Small cells, so a small link message limit: 40 members with their memberships, and the revocations, do not fit one answer.
        await using var cluster = await TestCluster.StartAsync(1, new ClusterOptions
        {
            Authority = _authority,
            Configuration = new Dictionary<string, string?> { ["Overlay:Network:CellSize"] = "1024" },
        });
        using var deadline = TestTimeouts.After(60);
        var node = cluster[0];
        // The node keeps the members it is given below: no gossip round probes them (nothing listens at their endpoints).
        await node.Services.GetRequiredService<DirectoryService>().StopAsync(deadline.Token);
        var limit = node.Services.GetRequiredService<IOptions<OverlayOptions>>().Value.Link.MaxMessageBytes;
        var book = node.Services.GetRequiredService<MembershipBook>();
        var now = DateTimeOffset.UtcNow;
        var members = new HashSet<NodeId>();
        using (var onionKey = OnionKey.Create(1, now.AddMinutes(-1), now.AddHours(1)))
        {
            for (var i = 0; i < Members; i++)
            {
                using var identity = NodeIdentity.Create();
                var endpoint = new Uri($"https://127.0.0.1:{20000 + i}");
                var descriptor = NodeDescriptor.Create(identity, onionKey, endpoint, node.Node.State.Network, now);
                var membership = NodeMembership.Issue(_authority, identity.Id, endpoint, now.AddHours(-1), now.AddHours(1));
                Assert.Equal(MembershipError.None, book.Learn(membership.Encoded.Span, identity.Id, endpoint, "a test"));
                Assert.True(node.Directory.AddConfirmed(descriptor, IPAddress.Loopback));
                members.Add(identity.Id);
            }
        }

        for (var i = 0; i < Revocations; i++)
        {
            using var revoked = NodeIdentity.Create();
            Assert.Equal(MembershipError.None, book.LearnRevocation(MembershipRevocation.Issue(_authority, revoked.Id, now, now.AddDays(1)).Encoded.Span, "a test"));
        }

        // The raw client is a member too: its TLS identity, with a membership it presents.
        var own = NodeMembership.Issue(_authority, TestLinkTls.ClientId, new Uri("https://127.0.0.1:1"), now.AddHours(-1), now.AddHours(1)).Encoded.ToArray();
        using var client = new RawLinkClient(node.LinkEndpoint);
        var learned = new HashSet<NodeId>();
        var exchanges = 0;
        var largest = 0;
        var fewest = int.MaxValue;
        while (!learned.IsSupersetOf(members))
        {
            Assert.True(exchanges < MaxExchanges, $"after {exchanges} exchanges {members.Count - learned.Count(members.Contains)} of {Members} members were never sent");
            exchanges++;
            var outcome = await client.CallAsync(RawLinkClient.Exchange, [RawProtobuf.Field(3, own)], deadline.Token);
            Assert.True(outcome.Status == 0, outcome.ToString());
            var message = Assert.Single(outcome.Messages);
            Assert.True(message.Length <= limit, $"an answer of {message.Length} bytes exceeds the link's message limit of {limit}");
            largest = Math.Max(largest, message.Length);
            var answer = DescriptorExchange.Parser.ParseFrom(message);
            Assert.Equal(Revocations, answer.Revocations.Count);
            Assert.Equal(answer.Known.Count, answer.KnownMemberships.Count);
            fewest = Math.Min(fewest, answer.Known.Count);
            for (var i = 0; i < answer.Known.Count; i++)
            {
                // Each descriptor travels with its own member's membership, signed by the authority.
                var id = new NodeId(answer.Known[i].Span.Slice(1, NodeId.Size));
                Assert.Equal(MembershipError.None, NodeMembership.TryParse(answer.KnownMemberships[i].Span, book.Authorities, DateTimeOffset.UtcNow, TimeSpan.FromMinutes(5), out var membership));
                Assert.Equal(id, membership!.Node);
                learned.Add(id);
            }
        }

        output.WriteLine($"{Members} members, {Revocations} revocations: every member learned in {exchanges} exchanges; answers carried at least {fewest} members, the largest {largest} of {limit} bytes");
        Assert.True(fewest < Members, "one answer carried every member: the test no longer shows the limit at work");
    }
}
