using Microsoft.Extensions.Time.Testing;

namespace Overlay.Host.Tests.Support;

/// <summary>
/// The flow-control tests hold a writer between two bounds with <see cref="ProgressCounter"/>. It
/// replaced a detector that called a writer stopped once it had not moved for half a second, which a
/// starved scheduler trips: here a count that does not move is never taken for one that was held.
/// </summary>
public sealed class ProgressCounterTests
{
    private static readonly TimeSpan Watch = TimeSpan.FromSeconds(1);

    [Fact]
    public async Task A_count_that_does_not_move_has_not_reached_its_lower_bound_however_long_it_waits()
    {
        using var deadline = TestTimeouts.After(10);
        var time = new FakeTimeProvider();
        var counter = new ProgressCounter();
        counter.Add(50);

        var reached = counter.ReachedAsync(100);
        time.Advance(TimeSpan.FromHours(1)); // a scheduler that runs nothing for an hour
        Assert.False(reached.IsCompleted);

        counter.Add(60);
        await reached.WaitAsync(deadline.Token);
        Assert.True(counter.ReachedAsync(110).IsCompletedSuccessfully);
    }

    [Fact]
    public async Task A_count_that_stays_within_its_bound_for_the_watch_is_held()
    {
        using var deadline = TestTimeouts.After(10);
        var time = new FakeTimeProvider();
        var counter = new ProgressCounter();
        counter.Add(150);

        var held = counter.StaysAtMostAsync(200, Watch, time, deadline.Token);
        counter.Add(50); // up to the bound, not past it
        Assert.False(held.IsCompleted);
        time.Advance(Watch);

        Assert.True(await held.WaitAsync(deadline.Token));
    }

    [Fact]
    public async Task A_count_that_passes_its_bound_during_the_watch_is_not_held()
    {
        using var deadline = TestTimeouts.After(10);
        var time = new FakeTimeProvider();
        var counter = new ProgressCounter();
        counter.Add(150);

        var held = counter.StaysAtMostAsync(200, Watch, time, deadline.Token);
        counter.Add(51);

        Assert.False(await held.WaitAsync(deadline.Token));
    }

    [Fact]
    public async Task A_failure_of_the_counted_work_ends_every_wait_with_it()
    {
        var counter = new ProgressCounter();
        var waiting = counter.ReachedAsync(100);

        counter.Fail(new IOException("the tunnel broke"));

        Assert.Equal("the tunnel broke", (await Assert.ThrowsAsync<IOException>(() => waiting)).Message);
        await Assert.ThrowsAsync<IOException>(() => counter.ReachedAsync(1));
    }
}
