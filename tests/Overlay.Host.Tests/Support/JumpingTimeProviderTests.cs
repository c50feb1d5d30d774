namespace Overlay.Host.Tests.Support;

/// <summary>
/// The clock the membership tests run a cluster on over hours (<see cref="JumpingTimeProvider"/>):
/// a jump fires what falls due in it and nothing else, and elapsed times stay right after long jumps.
/// </summary>
public sealed class JumpingTimeProviderTests
{
    [Fact]
    public async Task A_jump_fires_the_timers_due_within_it_and_leaves_the_later_ones_waiting()
    {
        using var deadline = TestTimeouts.After(10);
        var clock = new JumpingTimeProvider();
        var soon = Task.Delay(TimeSpan.FromHours(1), clock, deadline.Token);
        var later = Task.Delay(TimeSpan.FromHours(3), clock, deadline.Token);

        clock.Jump(TimeSpan.FromHours(2));

        await soon;
        Assert.False(later.IsCompleted);
        clock.Jump(TimeSpan.FromHours(1));
        await later;
    }

    [Fact]
    public async Task A_periodic_timer_ticks_once_for_a_jump_past_its_period_and_goes_on_ticking()
    {
        using var deadline = TestTimeouts.After(10);
        var clock = new JumpingTimeProvider();
        using var timer = new PeriodicTimer(TimeSpan.FromMinutes(10), clock);

        clock.Jump(TimeSpan.FromMinutes(25));
        Assert.True(await timer.WaitForNextTickAsync(deadline.Token));
        clock.Jump(TimeSpan.FromMinutes(10));
        Assert.True(await timer.WaitForNextTickAsync(deadline.Token));
    }

    [Fact]
    public void Elapsed_time_and_the_wall_clock_move_by_the_jump_however_long()
    {
        var clock = new JumpingTimeProvider();
        var start = clock.GetTimestamp();
        var wall = clock.GetUtcNow();

        clock.Jump(TimeSpan.FromDays(30));

        Assert.InRange(clock.GetElapsedTime(start), TimeSpan.FromDays(30), TimeSpan.FromDays(30) + TimeSpan.FromMinutes(1));
        Assert.InRange(clock.GetUtcNow() - wall, TimeSpan.FromDays(30), TimeSpan.FromDays(30) + TimeSpan.FromMinutes(1));
    }
}
