using Overlay.Errors;

namespace Overlay.Host.Tunnels.Streams;

/// <summary>
/// A stream's send credit: the bytes its receiver can still buffer. A writer takes what is there
/// (waiting while there is none); Credit frames give more; a failure wakes the waiter with it.
/// </summary>
internal sealed class SendWindow(int initial)
{
    private readonly Lock _gate = new();
    private long _available = initial;
    private TaskCompletionSource? _waiter;
    private TunnelException? _failure;

    /// <summary>Takes 1..<paramref name="wanted"/> bytes of credit, waiting until some is there.</summary>
    public async ValueTask<int> TakeAsync(int wanted, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task wait;
            lock (_gate)
            {
                if (_failure is not null)
                {
                    throw _failure;
                }

                if (_available > 0)
                {
                    var taken = (int)Math.Min(wanted, _available);
                    _available -= taken;
                    return taken;
                }

                _waiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                wait = _waiter.Task;
            }

            await wait.WaitAsync(cancellationToken);
        }
    }

    /// <summary>Adds credit; false when it would exceed what any receiver may grant (a protocol violation).</summary>
    public bool Add(uint bytes, long limit)
    {
        TaskCompletionSource? waiter;
        lock (_gate)
        {
            if (_available + bytes > limit)
            {
                return false;
            }

            _available += bytes;
            (waiter, _waiter) = (_waiter, null);
        }

        waiter?.TrySetResult();
        return true;
    }

    public void Fail(TunnelException failure)
    {
        TaskCompletionSource? waiter;
        lock (_gate)
        {
            _failure ??= failure;
            (waiter, _waiter) = (_waiter, null);
        }

        waiter?.TrySetResult();
    }
}
