using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Overlay.Errors;
using Overlay.Host.Keys;
using Overlay.Host.Replies;
using Overlay.Host.Tests.Infrastructure;
using Overlay.Identity;
using Overlay.Onion;
using V1 = Overlay.Protocol.Control.V1;

namespace Overlay.Host.Tests;

/// <summary>
/// Onion-key rotation over hours on a fake clock: early requests are never lost (also after the
/// schedule woke the service), are deferred to <c>Overlay:OnionKeys:MinEarlyRotationInterval</c>,
/// and at most <c>Overlay:OnionKeys:MaxLiveEpochs</c> epochs are held.
/// </summary>
public sealed class KeyRotationTests
{
    private static readonly TimeSpan EpochLength = TimeSpan.FromHours(1);
    private static readonly TimeSpan OverlapWindow = TimeSpan.FromMinutes(50);

    [Fact]
    public async Task An_early_rotation_asked_for_after_the_schedule_woke_the_service_happens()
    {
        await using var node = await FakeClockNode.StartAsync(minEarlyRotationInterval: TimeSpan.Zero);
        using var deadline = TestTimeouts.After(30);
        await node.PassScheduledExpiryAndRetirementAsync(deadline.Token);

        var before = node.CurrentEpoch;
        var rotated = node.WaitForNewEpochAsync(before, deadline.Token);
        var request = node.Keys.RotateSoon();
        Assert.True(request.At <= node.Time.GetUtcNow(), "nothing defers this rotation");

        var after = await rotated;
        Assert.True(after > before, $"no new epoch after an early request (still {before})");
        Assert.Equal(after, (await request.Rotated.WaitAsync(deadline.Token)).Epoch);
    }

    [Fact]
    public async Task Rotate_keys_from_the_control_api_after_the_schedule_woke_the_service_rotates()
    {
        await using var node = await FakeClockNode.StartAsync(minEarlyRotationInterval: TimeSpan.Zero);
        using var deadline = TestTimeouts.After(30);
        await node.PassScheduledExpiryAndRetirementAsync(deadline.Token);
        var before = node.CurrentEpoch;

        using var control = node.ControlClient();
        var response = await control.RotateKeysAsync(new V1.RotateKeysRequest(), deadline: DateTime.UtcNow + TestTimeouts.Seconds(20), cancellationToken: deadline.Token);

        Assert.Equal(V1.RotationOutcome.Rotated, response.Outcome);
        Assert.Equal(before, response.PreviousEpoch);
        Assert.True(response.Epoch > before, $"rotated to {response.Epoch}, not past {before}");
        Assert.Equal(response.Epoch, node.CurrentEpoch);
    }

    [Fact]
    public async Task A_replay_cache_filled_after_a_scheduled_rotation_rotates_the_key_early_and_headers_are_accepted_again()
    {
        var interval = TimeSpan.FromMinutes(5);
        await using var node = await FakeClockNode.StartAsync(interval, new Dictionary<string, string?>
        {
            ["Overlay:OnionKeys:ReplayCacheCapacity"] = "4",
            ["Overlay:OnionKeys:RotateWhenReplayCacheFraction"] = "0.5",
        });
        using var deadline = TestTimeouts.After(60);
        await node.AdvanceAsync(EpochLength, deadline.Token); // the schedule rotates
        var full = node.CurrentEpoch;

        // Fill the cache: the second header passes the nearly-full mark (an early request, deferred
        // to the interval after the scheduled rotation), the fifth finds it full.
        for (var i = 0; i < 4; i++)
        {
            await node.RoundTripAsync(deadline.Token);
        }

        var refused = await Assert.ThrowsAsync<TunnelException>(() => node.RoundTripAsync(deadline.Token));
        Assert.Equal((TunnelErrorKind.Busy, 1), (refused.Kind, refused.Hop));
        Assert.Equal(full, node.CurrentEpoch);

        var rotated = node.WaitForNewEpochAsync(full, deadline.Token);
        await node.AdvanceAsync(interval, deadline.Token);
        Assert.True(await rotated > full, "the full cache's request for a rotation was lost");
        await node.RoundTripAsync(deadline.Token);
    }

    [Fact]
    public async Task Early_rotations_wait_for_the_min_interval_and_live_epochs_are_capped()
    {
        var interval = TimeSpan.FromMinutes(10);
        await using var node = await FakeClockNode.StartAsync(interval, new Dictionary<string, string?> { ["Overlay:OnionKeys:MaxLiveEpochs"] = "3" });
        using var deadline = TestTimeouts.After(60);
        var first = node.CurrentEpoch;
        var started = node.Node.State.Keys.Current!.Key.ValidFrom;
        using var control = node.ControlClient();

        // Right after the start: the control API says when the rotation will happen, and it happens then, unasked.
        var deferred = await control.RotateKeysAsync(new V1.RotateKeysRequest(), cancellationToken: deadline.Token);
        Assert.Equal(V1.RotationOutcome.Deferred, deferred.Outcome);
        Assert.Equal((first, first), (deferred.PreviousEpoch, deferred.Epoch));
        Assert.Equal(started + interval, deferred.RotatesAt.ToDateTimeOffset());
        Assert.Equal(started + interval, node.Keys.RotateSoon().At);

        await node.AdvanceAsync(interval - TimeSpan.FromSeconds(1), deadline.Token);
        Assert.Equal(first, node.CurrentEpoch);
        var second = node.WaitForNewEpochAsync(first, deadline.Token);
        await node.AdvanceAsync(TimeSpan.FromSeconds(1), deadline.Token);
        var secondEpoch = await second;

        // Once the interval has passed an early rotation is immediate; the fourth live epoch retires the oldest at once.
        await node.AdvanceAsync(interval, deadline.Token);
        var thirdEpoch = (await node.Keys.RotateSoon().Rotated.WaitAsync(deadline.Token)).Epoch;
        Assert.Equal([thirdEpoch, secondEpoch, first], node.LiveEpochs);

        await node.AdvanceAsync(interval, deadline.Token);
        var fourthEpoch = (await node.Keys.RotateSoon().Rotated.WaitAsync(deadline.Token)).Epoch;
        Assert.Equal([fourthEpoch, thirdEpoch, secondEpoch], node.LiveEpochs); // within its overlap window, yet retired
        Assert.Contains(node.Logs, line => line.Contains($"epoch {first} retired before its overlap window ended", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("Overlay:OnionKeys:MaxLiveEpochs", "1", "MaxLiveEpochs")]
    [InlineData("Overlay:OnionKeys:MinEarlyRotationInterval", "01:00:00", "MinEarlyRotationInterval")]
    [InlineData("Overlay:OnionKeys:MinEarlyRotationInterval", "-00:00:01", "MinEarlyRotationInterval")]
    public async Task A_node_refuses_to_start_with_a_rotation_bound_out_of_range(string key, string value, string named)
    {
        var refused = await Assert.ThrowsAsync<OptionsValidationException>(() => FakeClockNode.StartAsync(TimeSpan.Zero, new Dictionary<string, string?> { [key] = value }));
        Assert.Contains($"Overlay:OnionKeys: {named} must be", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_reply_block_survives_an_early_rotation_of_its_hops_key_within_the_overlap_window_and_not_after()
    {
        await using var node = await FakeClockNode.StartAsync(minEarlyRotationInterval: TimeSpan.Zero);
        using var deadline = TestTimeouts.After(30);
        // Blocks without relays: the node is the reply route's only hop, and its epoch the block's.
        var store = node.Node.Services.GetRequiredService<ReplyBlockStore>();
        var inTime = await store.CreateAsync(0, [], deadline.Token);
        var late = await store.CreateAsync(0, [], deadline.Token);
        var before = node.CurrentEpoch;
        var rotated = node.WaitForNewEpochAsync(before, deadline.Token);
        node.Keys.RotateSoon();
        await rotated;

        await ReplyAsync(node, inTime, deadline.Token);
        Assert.Equal([7], (await store.WaitAsync(inTime.Handle, abandonOnCancel: true, deadline.Token)).Data);

        await node.AdvanceAsync(OverlapWindow, deadline.Token);
        Assert.DoesNotContain(before, node.LiveEpochs);
        Assert.True(node.Time.GetUtcNow() < late.Block.ExpiresAt, "the block itself has not expired: its epoch has");
        var refused = await Assert.ThrowsAsync<TunnelException>(() => ReplyAsync(node, late, deadline.Token));
        Assert.Equal((TunnelErrorKind.UnknownEpoch, 1), (refused.Kind, refused.Hop));
    }

    // The holder's side, raw: the block's header and one cell sealed under its key, to the block's first hop.
    private static async Task ReplyAsync(FakeClockNode node, OutstandingReply made, CancellationToken cancellationToken)
    {
        using var keys = new RawTunnelKeys(made.Block.Header.ToArray(), made.Block.CreateCodec(node.Node.State.Network, node.Time.GetUtcNow()));
        Assert.Equal(made.Block.FirstHop, node.Node.Id);
        await RawOrigin.RoundTripAsync(node.Node.LinkEndpoint, keys, new byte[] { 7 }, cancellationToken);
    }

    /// <summary>One real node on a fake clock, with its control endpoint.</summary>
    private sealed class FakeClockNode : IAsyncDisposable
    {
        private readonly DirectoryInfo _root;
        private readonly TestLogSink _logs;

        private FakeClockNode(DirectoryInfo root, FakeTimeProvider time, OverlayNode node, TestLogSink logs)
        {
            _root = root;
            Time = time;
            Node = node;
            _logs = logs;
        }

        public FakeTimeProvider Time { get; }

        public OverlayNode Node { get; }

        public OnionKeyService Keys => Node.Services.GetRequiredService<OnionKeyService>();

        public uint CurrentEpoch => Node.State.Keys.Current!.Epoch;

        public uint[] LiveEpochs => [.. Node.State.Keys.Epochs.Select(e => e.Epoch)];

        public IEnumerable<string> Logs => _logs.Entries.Select(e => e.ToString());

        public static async Task<FakeClockNode> StartAsync(TimeSpan minEarlyRotationInterval, IReadOnlyDictionary<string, string?>? extra = null)
        {
            var root = System.IO.Directory.CreateTempSubdirectory("overlay-key-rotation-");
            var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
            var logs = new TestLogSink();
            var configuration = new Dictionary<string, string?>
            {
                ["Overlay:DataDirectory"] = root.FullName,
                ["Overlay:Link:Url"] = "http://127.0.0.1:0",
                ["Overlay:Control:Url"] = "http://127.0.0.1:0",
                ["Overlay:OnionKeys:EpochLength"] = EpochLength.ToString(),
                ["Overlay:OnionKeys:OverlapWindow"] = OverlapWindow.ToString(),
                ["Overlay:OnionKeys:MinEarlyRotationInterval"] = minEarlyRotationInterval.ToString(),
            };
            foreach (var (key, value) in extra ?? new Dictionary<string, string?>())
            {
                configuration[key] = value;
            }

            var node = OverlayNode.Create(new OverlayNodeSettings
            {
                Configuration = configuration,
                ConfigureServices = services => services.AddSingleton<TimeProvider>(time),
                ConfigureLogging = logging =>
                {
                    logging.ClearProviders();
                    logging.AddProvider(logs.CreateProvider("node"));
                    logging.AddFilter("Microsoft", LogLevel.Warning);
                    logging.AddFilter("Grpc", LogLevel.Warning);
                },
            });
            var started = new FakeClockNode(root, time, node, logs);
            try
            {
                using var start = TestTimeouts.After(30);
                await node.StartAsync(start.Token);
                await started.Keys.Sleeping.WaitAsync(start.Token);
                return started;
            }
            catch
            {
                await started.DisposeAsync();
                throw;
            }
        }

        /// <summary>Moves the clock once the rotation loop waits, and waits until it has acted and waits again.</summary>
        public async Task AdvanceAsync(TimeSpan by, CancellationToken cancellationToken)
        {
            await Keys.Sleeping.WaitAsync(cancellationToken);
            Time.Advance(by);
            await Keys.Sleeping.WaitAsync(cancellationToken);
        }

        /// <summary>Lets the schedule wake the service twice: the key expires (a rotation), then the old epoch's overlap ends (a retirement).</summary>
        public async Task PassScheduledExpiryAndRetirementAsync(CancellationToken cancellationToken)
        {
            var first = CurrentEpoch;
            await AdvanceAsync(EpochLength, cancellationToken);
            var second = CurrentEpoch;
            Assert.True(second > first, "the schedule did not rotate the expired key");
            Assert.Equal([second, first], LiveEpochs);
            await AdvanceAsync(OverlapWindow, cancellationToken);
            Assert.Equal([second], LiveEpochs);
        }

        public Task<uint> WaitForNewEpochAsync(uint after, CancellationToken cancellationToken)
        {
            var published = new TaskCompletionSource<uint>(TaskCreationOptions.RunContinuationsAsynchronously);
            Node.State.DescriptorChanged += d =>
            {
                if (d.OnionEpoch != after)
                {
                    published.TrySetResult(d.OnionEpoch);
                }
            };
            return published.Task.WaitAsync(cancellationToken);
        }

        /// <summary>One header to this node as the destination, built from its current descriptor.</summary>
        public async Task RoundTripAsync(CancellationToken cancellationToken)
        {
            using var keys = RawOrigin.Build(Node.State.Network, [Node.State.Descriptor!]);
            byte[] payload = [1, 2, 3];
            Assert.Equal(payload, await RawOrigin.RoundTripAsync(Node.LinkEndpoint, keys, payload, cancellationToken));
        }

        public ControlCall ControlClient() => new(Node);

        public async ValueTask DisposeAsync()
        {
            await Node.KillAsync();
            await Node.DisposeAsync();
            try
            {
                _root.Delete(recursive: true);
            }
            catch (IOException)
            {
                // A temp directory left behind is harmless.
            }
        }
    }
}
