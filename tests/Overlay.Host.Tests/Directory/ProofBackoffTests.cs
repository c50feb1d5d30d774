using System.Globalization;
using Google.Protobuf;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using Overlay.Host.Directory;
using Overlay.Host.Options;
using Overlay.Host.Tests.Infrastructure;
using Overlay.Identity;
using Overlay.Protocol;
using Overlay.Protocol.V1;

namespace Overlay.Host.Tests.Directory;

/// <summary>
/// A failed endpoint proof cools that endpoint down for a short time first, then twice as long after
/// each further failure, up to Overlay:Directory:ProofCooldown: a peer that was only starting is
/// proved again within seconds, a dead endpoint gossiped forever still costs one dial per cooldown.
/// Real node, real dials, a fake clock.
/// </summary>
public sealed class ProofBackoffTests
{
    private static readonly DirectoryOptions Defaults = new();

    [Fact]
    public async Task A_failed_endpoint_is_proved_again_after_the_initial_wait_and_each_further_failure_doubles_it_up_to_the_cap()
    {
        await using var recorder = new ConnectionRecorder();
        await using var node = await FakeClockNode.StartAsync();
        using var deadline = TestTimeouts.After(60);
        using var owner = NodeIdentity.Create();
        var dead = Descriptor(owner, node.Time.GetUtcNow(), recorder.Port);

        await node.ProveAndFailAsync(dead, recorder, expectedConnections: 1, deadline.Token);

        // 5 s, 10 s, 20 s, 40 s, 80 s, then the 2-minute cap (spread below it), and the cap again.
        var wait = Defaults.ProofCooldownInitial;
        for (var failures = 1; failures <= 7; failures++)
        {
            node.Time.Advance(Earliest(wait) - TimeSpan.FromMilliseconds(1));
            await node.GossipAsync(dead, deadline.Token);
            Assert.False(node.Directory.IsProving(dead.Id), $"proved again before {Earliest(wait)} after failure {failures}");
            Assert.Equal(failures, recorder.Connections);

            // The wait carries up to a quarter more of random spread; one that would pass the cap is up to a quarter below it.
            node.Time.Advance(Latest(wait) - Earliest(wait) + TimeSpan.FromMilliseconds(1));
            await node.ProveAndFailAsync(dead, recorder, expectedConnections: failures + 1, deadline.Token);
            wait = Min(wait * 2, Defaults.ProofCooldown);
        }
    }

    [Fact]
    public async Task A_proof_that_succeeds_starts_the_next_failure_at_the_initial_wait_again()
    {
        await using var peer = await TestCluster.StartAsync(1, new ClusterOptions
        {
            Configuration = new Dictionary<string, string?> { ["Overlay:Link:Url"] = "http://127.0.0.1:0" },
        });
        await using var node = await FakeClockNode.StartAsync();
        using var deadline = TestTimeouts.After(90);
        var id = peer[0].Id;
        await peer.StopAsync(0);

        // Three failures while the peer is down: its next wait would be 20 s.
        var descriptor = peer[0].Node.State.Descriptor!;
        await node.ProveAndFailAsync(descriptor, deadline.Token);
        node.Time.Advance(Latest(Defaults.ProofCooldownInitial));
        await node.ProveAndFailAsync(descriptor, deadline.Token);
        node.Time.Advance(Latest(Defaults.ProofCooldownInitial * 2));
        await node.ProveAndFailAsync(descriptor, deadline.Token);

        // Up again on its port: proved once its wait ran out.
        await peer.RestartAsync(0, samePort: true, deadline.Token);
        descriptor = peer[0].Node.State.Descriptor!;
        node.Time.Advance(Latest(Defaults.ProofCooldownInitial * 4));
        await node.GossipAsync(descriptor, deadline.Token);
        await HostileGossipTests.WaitUntilAsync(() => node.Peers.Find(id)?.Status == PeerStatus.Up, deadline.Token);

        // Down again, and noticed (two failed gossip rounds): the proof that gossip brings fails, and
        // the one after it comes after the initial wait, not the 40 s the old streak had reached.
        await peer.StopAsync(0);
        await node.Directory.RunGossipRoundAsync(deadline.Token);
        await node.Directory.RunGossipRoundAsync(deadline.Token);
        Assert.Equal(PeerStatus.Down, node.Peers.Find(id)?.Status);
        await node.ProveAndFailAsync(descriptor, deadline.Token);
        node.Time.Advance(Latest(Defaults.ProofCooldownInitial));
        await node.ProveAndFailAsync(descriptor, deadline.Token);
    }

    internal static TimeSpan Latest(TimeSpan wait) => Min(wait * 1.25, Defaults.ProofCooldown);

    private static TimeSpan Earliest(TimeSpan wait) => wait * 1.25 > Defaults.ProofCooldown ? Min(wait, Defaults.ProofCooldown * 0.75) : wait;

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    private static NodeDescriptor Descriptor(NodeIdentity owner, DateTimeOffset now, int port)
    {
        using var onionKey = OnionKey.Create(1, now.AddMinutes(-1), now.AddHours(1));
        return NodeDescriptor.Create(owner, onionKey, new Uri(string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{port}")),
            NetworkParameters.Default, now);
    }

    /// <summary>One real node on a fake clock, reached over h2c.</summary>
    private sealed class FakeClockNode : IAsyncDisposable
    {
        private readonly DirectoryInfo _root;

        private FakeClockNode(DirectoryInfo root, FakeTimeProvider time, OverlayNode node, TestLogSink logs)
        {
            _root = root;
            Time = time;
            Node = node;
            Logs = logs;
        }

        public FakeTimeProvider Time { get; }

        public OverlayNode Node { get; }

        public TestLogSink Logs { get; }

        public DirectoryService Directory => Node.Services.GetRequiredService<DirectoryService>();

        public PeerDirectory Peers => Node.Services.GetRequiredService<PeerDirectory>();

        public static async Task<FakeClockNode> StartAsync()
        {
            var root = System.IO.Directory.CreateTempSubdirectory("overlay-proof-backoff-");
            var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
            var logs = new TestLogSink();
            var node = OverlayNode.Create(new OverlayNodeSettings
            {
                Configuration = SingleHostNetwork.With(new Dictionary<string, string?>
                {
                    ["Overlay:DataDirectory"] = root.FullName,
                    ["Overlay:Link:Url"] = "http://127.0.0.1:0",
                    ["Logging:LogLevel:Overlay"] = "Debug",
                }),
                ConfigureServices = services => services.AddSingleton<TimeProvider>(time),
                ConfigureLogging = logging =>
                {
                    logging.ClearProviders();
                    logging.SetMinimumLevel(LogLevel.Debug);
                    logging.AddFilter("Microsoft", LogLevel.Warning);
                    logging.AddFilter("Grpc", LogLevel.Warning);
                    logging.AddProvider(logs.CreateProvider("node"));
                },
            });
            var started = new FakeClockNode(root, time, node, logs);
            try
            {
                using var start = TestTimeouts.After(30);
                await node.StartAsync(start.Token);
                return started;
            }
            catch
            {
                await started.DisposeAsync();
                throw;
            }
        }

        public async Task GossipAsync(NodeDescriptor descriptor, CancellationToken cancellationToken)
        {
            using var channel = TestLinkTls.Channel(Node.LinkEndpoint);
            await new Protocol.V1.Link.LinkClient(channel).ExchangeAsync(new DescriptorExchange { Known = { ByteString.CopyFrom(descriptor.Encoded.Span) } },
                cancellationToken: cancellationToken);
        }

        /// <summary>Gossips <paramref name="descriptor"/>, and waits until its proof dialed the recorder, failed and let go of the prover.</summary>
        public async Task ProveAndFailAsync(NodeDescriptor descriptor, ConnectionRecorder recorder, int expectedConnections, CancellationToken cancellationToken)
        {
            await ProveAndFailAsync(descriptor, () => recorder.Connections >= expectedConnections, cancellationToken);
            Assert.Equal(expectedConnections, recorder.Connections);
        }

        /// <summary>Gossips <paramref name="descriptor"/>, and waits until its proof failed and let go of the prover.</summary>
        public Task ProveAndFailAsync(NodeDescriptor descriptor, CancellationToken cancellationToken) =>
            ProveAndFailAsync(descriptor, dialed: () => false, cancellationToken);

        private async Task ProveAndFailAsync(NodeDescriptor descriptor, Func<bool> dialed, CancellationToken cancellationToken)
        {
            var position = Logs.Position;
            await GossipAsync(descriptor, cancellationToken);
            // Consider runs within the Exchange call: queued, the proof is running or has failed already.
            Assert.True(Directory.IsProving(descriptor.Id) || dialed() || Failures(descriptor, position) > 0,
                "not queued for a proof: the endpoint is still cooling down");
            await Logs.WaitForAsync(e => IsFailure(e, descriptor, position), "the proof failed", cancellationToken);
            await HostileGossipTests.WaitUntilAsync(() => !Directory.IsProving(descriptor.Id), cancellationToken);
        }

        private int Failures(NodeDescriptor descriptor, long position) => Logs.Entries.Count(e => IsFailure(e, descriptor, position));

        private static bool IsFailure(LogEntry entry, NodeDescriptor descriptor, long position) =>
            entry.Sequence >= position && entry.EventId.Id == 302 && entry.Message.Contains(descriptor.Id.ToShortString(), StringComparison.Ordinal);

        public async ValueTask DisposeAsync()
        {
            await Node.KillAsync();
            await Node.DisposeAsync();
            _root.Delete(recursive: true);
        }
    }
}
