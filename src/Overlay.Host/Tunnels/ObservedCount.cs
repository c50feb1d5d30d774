namespace Overlay.Host.Tunnels;

/// <summary>A count others can wait on (padding cells sent or received): rare events, so one signal per increment is cheap.</summary>
internal sealed class ObservedCount
{
    private long _value;
    private TaskCompletionSource _changed = NewSignal();

    public long Value => Interlocked.Read(ref _value);

    public void Increment()
    {
        Interlocked.Increment(ref _value);
        Interlocked.Exchange(ref _changed, NewSignal()).TrySetResult();
    }

    /// <summary>Completes once the count reaches <paramref name="target"/>.</summary>
    public async Task WaitForAsync(long target, CancellationToken cancellationToken)
    {
        while (true)
        {
            // Take the signal before looking, so an increment between the two is not missed.
            var changed = Volatile.Read(ref _changed).Task;
            if (Value >= target)
            {
                return;
            }

            await changed.WaitAsync(cancellationToken);
        }
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
