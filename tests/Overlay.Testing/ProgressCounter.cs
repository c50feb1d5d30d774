namespace Overlay.Testing;

/// <summary>
/// A count that only grows (bytes a writer got through, messages seen), with a wait on reaching a
/// value. It lets a test hold progress against a bound without guessing from time that something
/// stopped: reaching a value is an event, and staying under a bound is watched for a scaled while,
/// which a slow scheduler can only make easier to pass, never fail.
/// </summary>
internal sealed class ProgressCounter
{
    private readonly Lock _lock = new();
    private readonly List<(long Value, TaskCompletionSource Reached)> _waits = [];
    private long _value;
    private Exception? _failure;

    /// <summary>How long <see cref="StaysAtMostAsync(long, CancellationToken)"/> watches, scaled.</summary>
    public static TimeSpan Watch => TestTimeouts.Seconds(1);

    public long Value => Interlocked.Read(ref _value);

    public void Add(long amount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(amount);
        lock (_lock)
        {
            var value = Interlocked.Add(ref _value, amount);
            for (var i = _waits.Count - 1; i >= 0; i--)
            {
                if (_waits[i].Value <= value)
                {
                    _waits[i].Reached.TrySetResult();
                    _waits.RemoveAt(i);
                }
            }
        }
    }

    /// <summary>The counted work failed: every wait, now and later, fails with <paramref name="failure"/>.</summary>
    public void Fail(Exception failure)
    {
        lock (_lock)
        {
            _failure = failure;
            foreach (var (_, reached) in _waits)
            {
                reached.TrySetException(failure);
            }

            _waits.Clear();
        }
    }

    /// <summary>Completes once the count is at least <paramref name="value"/>.</summary>
    public Task ReachedAsync(long value)
    {
        lock (_lock)
        {
            if (Value >= value)
            {
                return Task.CompletedTask;
            }

            if (_failure is not null)
            {
                return Task.FromException(_failure);
            }

            var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waits.Add((value, reached));
            return reached.Task;
        }
    }

    /// <summary>
    /// True when the count does not pass <paramref name="atMost"/> for <see cref="Watch"/>: a count that
    /// nothing holds passes it at once, while a starved one only moves slower.
    /// </summary>
    public Task<bool> StaysAtMostAsync(long atMost, CancellationToken cancellationToken) =>
        StaysAtMostAsync(atMost, Watch, TimeProvider.System, cancellationToken);

    /// <inheritdoc cref="StaysAtMostAsync(long, CancellationToken)"/>
    public async Task<bool> StaysAtMostAsync(long atMost, TimeSpan watch, TimeProvider time, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfEqual(atMost, long.MaxValue);

        // The watch starts here, synchronously, so a test driving a fake clock may advance it right after the call.
        var passed = ReachedAsync(atMost + 1).WaitAsync(watch, time, cancellationToken);
        try
        {
            await passed;
            return false;
        }
        catch (TimeoutException)
        {
            return true;
        }
    }
}
