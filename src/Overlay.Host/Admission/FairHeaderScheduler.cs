namespace Overlay.Host.Admission;

/// <summary>
/// Turns at header processing (one X25519 agreement each, the expensive step of admission), served
/// to the fairness keys in rotation: at most <c>concurrency</c> headers are processed at once, and
/// when all turns are taken each key waits in its own bounded queue. A key that floods lengthens
/// its own queue (then is refused) while another key's header waits for at most one turn per key
/// ahead of it.
/// </summary>
internal sealed class FairHeaderScheduler(int concurrency, int queuePerKey)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, KeyQueue> _queues = new(StringComparer.Ordinal);
    private readonly Queue<KeyQueue> _rotation = new();
    private int _running;

    /// <summary>
    /// Takes a turn, at once or after the keys ahead in rotation had theirs. False: the key's queue is
    /// full (refuse the stream). Cancelled by <paramref name="cancellationToken"/> while waiting. A
    /// true result must be followed by exactly one <see cref="Release"/>.
    /// </summary>
    public ValueTask<bool> WaitTurnAsync(string key, CancellationToken cancellationToken)
    {
        Waiter waiter;
        lock (_lock)
        {
            if (_running < concurrency && _rotation.Count == 0)
            {
                _running++;
                return ValueTask.FromResult(true);
            }

            if (!_queues.TryGetValue(key, out var queue))
            {
                queue = new KeyQueue(key);
                _queues.Add(key, queue);
                _rotation.Enqueue(queue);
            }
            else if (queue.Live >= queuePerKey)
            {
                return ValueTask.FromResult(false);
            }

            waiter = new Waiter(queue);
            queue.Waiters.Enqueue(waiter);
            queue.Live++;
        }

        return new ValueTask<bool>(WaitAsync(waiter, cancellationToken));
    }

    /// <summary>Ends a turn: the next key in rotation with a live waiter gets it.</summary>
    public void Release()
    {
        lock (_lock)
        {
            while (_rotation.TryDequeue(out var queue))
            {
                Waiter? granted = null;
                while (granted is null && queue.Waiters.TryDequeue(out var waiter))
                {
                    if (waiter.Completion.TrySetResult(true))
                    {
                        queue.Live--;
                        granted = waiter;
                    }
                }

                if (queue.Waiters.Count == 0)
                {
                    _queues.Remove(queue.Key);
                }
                else
                {
                    _rotation.Enqueue(queue);
                }

                if (granted is not null)
                {
                    return;
                }
            }

            _running--;
        }
    }

    private async Task<bool> WaitAsync(Waiter waiter, CancellationToken cancellationToken)
    {
        await using var registration = cancellationToken.Register(static state =>
        {
            var (scheduler, waiter) = ((FairHeaderScheduler, Waiter))state!;
            scheduler.Cancel(waiter);
        }, (this, waiter));
        return await waiter.Completion.Task;
    }

    // A cancelled waiter stays queued until its turn comes round (then skipped); it stops counting at once.
    private void Cancel(Waiter waiter)
    {
        lock (_lock)
        {
            if (waiter.Completion.TrySetCanceled())
            {
                waiter.Queue.Live--;
            }
        }
    }

    private sealed class KeyQueue(string key)
    {
        public string Key { get; } = key;

        public Queue<Waiter> Waiters { get; } = new();

        public int Live { get; set; }
    }

    private sealed class Waiter(KeyQueue queue)
    {
        public KeyQueue Queue { get; } = queue;

        public TaskCompletionSource<bool> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
