using Microsoft.Extensions.Time.Testing;
using Overlay.Host.Admission;
using Overlay.Host.Options;
using Overlay.Host.Tunnels;

namespace Overlay.Host.Tests.Hostile;

/// <summary>The fair-share rules on their own: tunnel slots, turns at header processing, option validation.</summary>
public sealed class FairShareTests
{
    [Fact]
    public void One_previous_hop_cannot_take_the_reserve_of_tunnel_slots()
    {
        var registry = new TunnelRegistry(16);
        var flooder = 0;
        while (registry.TryEnterServed("flooder"))
        {
            flooder++;
        }

        Assert.Equal(14, flooder); // 16 less a reserve of an eighth
        Assert.True(registry.TryEnterServed("other"));
        Assert.True(registry.TryEnterServed("third"));
        Assert.False(registry.TryEnterServed("fourth")); // full
        registry.ExitServed("flooder");
        Assert.False(registry.TryEnterServed("flooder")); // above its fair share while others wait
        Assert.True(registry.TryEnterServed("fourth"));
        Assert.Equal(16, registry.Served);
    }

    [Fact]
    public async Task Turns_at_header_processing_rotate_between_previous_hops()
    {
        var scheduler = new FairHeaderScheduler(concurrency: 1, queuePerKey: 4);
        using var cancel = TestTimeouts.After(30);
        Assert.True(await scheduler.WaitTurnAsync("flooder", cancel.Token)); // the only turn, taken
        var flood = Enumerable.Range(0, 4).Select(_ => scheduler.WaitTurnAsync("flooder", cancel.Token).AsTask()).ToList();
        Assert.False(await scheduler.WaitTurnAsync("flooder", cancel.Token)); // its queue is full
        var other = scheduler.WaitTurnAsync("other", cancel.Token).AsTask();

        scheduler.Release();
        Assert.True(await flood[0]); // the flooder's key was first in rotation
        Assert.False(other.IsCompleted);
        scheduler.Release();
        Assert.True(await other); // then the other key, ahead of the flooder's three still queued
        Assert.All(flood.Skip(1), task => Assert.False(task.IsCompleted));
    }

    [Fact]
    public void A_source_over_its_header_rate_is_paced_then_refused_and_others_are_not()
    {
        var time = new FakeTimeProvider();
        var limiter = new HeaderRateLimiter(perSecond: 10, burst: 2, time);
        var holdAtMost = TimeSpan.FromSeconds(1);

        Assert.True(limiter.TryReserve("flooder", holdAtMost, out var first));
        Assert.True(limiter.TryReserve("flooder", holdAtMost, out var second));
        Assert.Equal(TimeSpan.Zero, first);
        Assert.Equal(TimeSpan.Zero, second); // the burst

        // Past the burst, each is held a tenth of a second longer than the one before, up to the hold allowed.
        var holds = new List<TimeSpan>();
        while (limiter.TryReserve("flooder", holdAtMost, out var hold))
        {
            holds.Add(hold);
        }

        Assert.Equal(10, holds.Count);
        AssertClose(TimeSpan.FromSeconds(0.1), holds[0]);
        AssertClose(holdAtMost, holds[^1]);
        Assert.False(limiter.TryAcquire("flooder"));

        // Another source has its own bucket.
        Assert.True(limiter.TryReserve("other", holdAtMost, out var other));
        Assert.Equal(TimeSpan.Zero, other);

        // The debt is paid at the rate: after the longest hold, the next waits a tenth of a second again.
        time.Advance(holdAtMost);
        Assert.True(limiter.TryReserve("flooder", holdAtMost, out var after));
        AssertClose(TimeSpan.FromSeconds(0.1), after);
    }

    [Fact]
    public void While_another_previous_hop_is_active_a_flood_is_held_to_its_share_of_the_node_rate()
    {
        var time = new FakeTimeProvider();
        var limiter = new HeaderRateLimiter(perSecond: 100, burst: 1, time, sharedPerSecond: 100);
        var holdAtMost = TimeSpan.FromSeconds(10);

        // Alone, the flooder is paced at its own rate: each stream held 10 ms longer than the one before.
        Assert.Equal(TimeSpan.FromMilliseconds(10), Spacing(limiter, "flooder", holdAtMost));

        // Another hop sends a stream every 20 ms (50/s, far above a 64th of the shared rate); from the
        // next recount on, the two split the node's rate.
        for (var i = 0; i < 15; i++)
        {
            time.Advance(TimeSpan.FromMilliseconds(20));
            Assert.True(limiter.TryReserve("other", holdAtMost, out _));
            Assert.True(limiter.TryReserve("flooder", holdAtMost, out _));
        }

        Assert.Equal(2, limiter.ActiveKeys);
        Assert.Equal(TimeSpan.FromMilliseconds(20), Spacing(limiter, "flooder", holdAtMost));

        // The other hop falls silent: a second later the flooder has the whole rate again (its debt still paid).
        for (var i = 0; i < 20; i++)
        {
            time.Advance(TimeSpan.FromMilliseconds(100));
            Assert.True(limiter.TryReserve("flooder", holdAtMost, out _));
        }

        Assert.Equal(1, limiter.ActiveKeys);
        Assert.Equal(TimeSpan.FromMilliseconds(10), Spacing(limiter, "flooder", holdAtMost));
    }

    [Fact]
    public void Many_light_previous_hops_do_not_shrink_a_busy_hops_rate()
    {
        // The node's defaults: 2,000/s alone and shared. Thirty-nine blocks sending one stream a second
        // each (far under a 64th of the shared rate) are not counted in the split.
        var time = new FakeTimeProvider();
        var limiter = new HeaderRateLimiter(perSecond: 2000, burst: 1, time, sharedPerSecond: 2000);
        var holdAtMost = TimeSpan.FromSeconds(1);
        for (var step = 0; step < 30; step++)
        {
            time.Advance(TimeSpan.FromMilliseconds(100));
            Assert.True(limiter.TryReserve("busy", holdAtMost, out _));
            if (step % 10 == 0)
            {
                for (var light = 0; light < 39; light++)
                {
                    Assert.True(limiter.TryReserve($"light {light}", holdAtMost, out _));
                }
            }
        }

        Assert.Equal(TimeSpan.FromMilliseconds(0.5), Spacing(limiter, "busy", holdAtMost));
        Assert.True(limiter.ActiveKeys <= 1, $"{limiter.ActiveKeys} keys counted");
    }

    // How much longer the second of two streams sent at once is held than the first: one over the key's rate.
    private static TimeSpan Spacing(HeaderRateLimiter limiter, string key, TimeSpan holdAtMost)
    {
        Assert.True(limiter.TryReserve(key, holdAtMost, out var first));
        Assert.True(limiter.TryReserve(key, holdAtMost, out var second));
        return TimeSpan.FromMilliseconds(Math.Round((second - first).TotalMilliseconds, 3));
    }

    private static void AssertClose(TimeSpan expected, TimeSpan actual) =>
        Assert.InRange(actual.TotalMilliseconds, expected.TotalMilliseconds - 1, expected.TotalMilliseconds + 1);

    [Theory]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    [InlineData(0)]
    [InlineData(-1)]
    public void A_header_rate_that_is_not_a_positive_number_is_refused(double rate)
    {
        var perKey = new OverlayOptionsValidator().Validate(null, new OverlayOptions { Tunnels = { HeadersPerSecondPerPeer = rate } });
        var shared = new OverlayOptionsValidator().Validate(null, new OverlayOptions { Tunnels = { HeadersPerSecond = rate } });

        Assert.Contains(perKey.Failures!, f => f.Contains("Overlay:Tunnels:HeadersPerSecondPerPeer", StringComparison.Ordinal));
        Assert.Contains(shared.Failures!, f => f.Contains("Overlay:Tunnels:HeadersPerSecond ", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(1024 * 1024)]
    [InlineData(1000)]
    public void A_message_limit_far_from_the_largest_message_is_refused(int bytes)
    {
        var options = new OverlayOptions { Link = { MaxMessageBytes = bytes } };

        var result = new OverlayOptionsValidator().Validate(null, options);

        Assert.Contains(result.Failures!, f => f.Contains("Overlay:Link:MaxMessageBytes", StringComparison.Ordinal));
    }
}
