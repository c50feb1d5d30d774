using System.Globalization;
using Microsoft.Extensions.Time.Testing;
using Overlay.Host.Directory;
using Overlay.Host.Options;

namespace Overlay.Host.Tests.Directory;

/// <summary>The proof cooldown's schedule, spread and bound, on a fake clock.</summary>
public sealed class ProofCooldownsTests
{
    private static readonly TimeSpan Initial = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan Cap = TimeSpan.FromMinutes(2);
    private static readonly Uri Endpoint = new("http://192.0.2.1:7400");

    private readonly FakeTimeProvider _time = new();
    private readonly ProofCooldowns _cooldowns;

    public ProofCooldownsTests() =>
        _cooldowns = new ProofCooldowns(new DirectoryOptions { ProofCooldownInitial = Initial, ProofCooldown = Cap }, _time);

    [Fact]
    public void Each_consecutive_failure_doubles_the_wait_up_to_the_cap_with_at_most_a_quarter_of_spread()
    {
        var step = Initial;
        for (var failure = 1; failure <= 10; failure++)
        {
            var wait = _cooldowns.Failed(Endpoint);

            AssertWithin(step, wait);
            _time.Advance(wait - TimeSpan.FromTicks(1));
            Assert.True(_cooldowns.IsCoolingDown(Endpoint));
            _time.Advance(TimeSpan.FromTicks(1));
            Assert.False(_cooldowns.IsCoolingDown(Endpoint));
            step = step * 2 < Cap ? step * 2 : Cap;
        }
    }

    [Fact]
    public void The_spread_is_random_within_a_quarter_of_the_first_wait()
    {
        var waits = Enumerable.Range(0, 500).Select(i => _cooldowns.Failed(Numbered(i))).ToList();

        Assert.All(waits, wait => AssertWithin(Initial, wait));
        Assert.True(waits.Distinct().Count() > 100, "the waits are spread");
    }

    [Fact]
    public void The_waits_at_the_cap_are_spread_below_it()
    {
        var waits = new List<TimeSpan>();
        for (var i = 0; i < 200; i++)
        {
            for (var failure = 0; failure < 6; failure++)
            {
                _cooldowns.Failed(Numbered(i));
            }

            waits.Add(_cooldowns.Failed(Numbered(i)));
        }

        Assert.All(waits, wait => AssertWithin(Cap, wait));
        Assert.True(waits.Distinct().Count() > 50, "the waits at the cap are spread");
    }

    [Fact]
    public void A_success_starts_the_next_streak_at_the_initial_wait()
    {
        for (var failure = 0; failure < 4; failure++)
        {
            _time.Advance(_cooldowns.Failed(Endpoint));
        }

        _cooldowns.Succeeded(Endpoint);

        Assert.False(_cooldowns.IsCoolingDown(Endpoint));
        AssertWithin(Initial, _cooldowns.Failed(Endpoint));
    }

    [Fact]
    public void A_streak_is_forgotten_once_its_wait_ran_out_more_than_a_cap_ago()
    {
        _time.Advance(_cooldowns.Failed(Endpoint));
        _time.Advance(_cooldowns.Failed(Endpoint));

        // Failing again soon after the wait continues the streak; after a quiet cap it starts over.
        var third = _cooldowns.Failed(Endpoint);
        AssertWithin(Initial * 4, third);
        _time.Advance(third + Cap);
        AssertWithin(Initial, _cooldowns.Failed(Endpoint));
    }

    [Fact]
    public void A_flood_of_distinct_dead_endpoints_stays_within_the_bound_and_the_newest_still_cool_down()
    {
        for (var i = 0; i < ProofCooldowns.MaxEndpoints + 1_000; i++)
        {
            _cooldowns.Failed(Numbered(i));
        }

        Assert.True(_cooldowns.Count <= ProofCooldowns.MaxEndpoints, $"{_cooldowns.Count} endpoints remembered");
        Assert.True(_cooldowns.IsCoolingDown(Numbered(ProofCooldowns.MaxEndpoints + 999)));
    }

    [Fact]
    public void When_full_lapsed_endpoints_make_room_before_cooling_ones()
    {
        // The running cooldown first in enumeration order (waiting near the cap), so evicting it in place
        // of a lapsed one would show.
        for (var failure = 0; failure < 6; failure++)
        {
            _cooldowns.Failed(Endpoint);
        }

        for (var i = 0; i < ProofCooldowns.MaxEndpoints - 1; i++)
        {
            _cooldowns.Failed(Numbered(i));
        }

        _time.Advance(Initial * 2); // past every initial wait, well within the cap's
        _cooldowns.Failed(Numbered(-1));

        Assert.True(_cooldowns.IsCoolingDown(Endpoint), "a running cooldown was dropped while lapsed ones were kept");
        Assert.True(_cooldowns.IsCoolingDown(Numbered(-1)));
        Assert.Equal(ProofCooldowns.MaxEndpoints, _cooldowns.Count);
    }

    // Up to a quarter above the step; one that would pass the cap is up to a quarter below the cap instead.
    private static void AssertWithin(TimeSpan step, TimeSpan wait)
    {
        var passesCap = step * 1.25 > Cap;
        Assert.InRange(wait, passesCap ? Min(step, Cap * 0.75) : step, passesCap ? Cap : step * 1.25);
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    private static Uri Numbered(int i) => new(string.Create(CultureInfo.InvariantCulture, $"http://198.51.100.1:{10_000 + i}"));
}
