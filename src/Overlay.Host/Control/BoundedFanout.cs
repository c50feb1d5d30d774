using System.Threading.Channels;
using Grpc.Core;

namespace Overlay.Host.Control;

/// <summary>
/// Publishes items to any number of stream consumers, each through its own bounded buffer.
/// Publishing never waits: a consumer whose buffer is full is ended (its call fails with
/// ResourceExhausted) and the others go on, so a stalled client never slows the node.
/// </summary>
internal sealed class BoundedFanout<T>
    where T : class
{
    private readonly Lock _lock = new();
    private Subscription[] _subscribers = [];
    private long _published;
    private long _dropped;

    public int Count => Volatile.Read(ref _subscribers).Length;

    public long PublishedTotal => Interlocked.Read(ref _published);

    public long DroppedTotal => Interlocked.Read(ref _dropped);

    /// <summary>True when someone may want an item (saves building items nobody reads).</summary>
    public bool HasSubscribers => Volatile.Read(ref _subscribers).Length != 0;

    public Subscription Subscribe(int capacity, Func<T, bool>? filter = null)
    {
        var subscription = new Subscription(this, capacity, filter);
        lock (_lock)
        {
            Volatile.Write(ref _subscribers, [.. _subscribers, subscription]);
        }

        return subscription;
    }

    public void Publish(T item)
    {
        var subscribers = Volatile.Read(ref _subscribers);
        if (subscribers.Length == 0)
        {
            return;
        }

        Interlocked.Increment(ref _published);
        foreach (var subscriber in subscribers)
        {
            subscriber.Offer(item);
        }
    }

    private void Remove(Subscription subscription)
    {
        lock (_lock)
        {
            Volatile.Write(ref _subscribers, [.. _subscribers.Where(s => s != subscription)]);
        }
    }

    /// <summary>One consumer: a bounded buffer drained into its response stream.</summary>
    internal sealed class Subscription : IDisposable
    {
        private readonly BoundedFanout<T> _owner;
        private readonly Channel<T> _buffer;
        private readonly Func<T, bool>? _filter;
        private readonly TaskCompletionSource _overflowed = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Subscription(BoundedFanout<T> owner, int capacity, Func<T, bool>? filter)
        {
            _owner = owner;
            _filter = filter;
            Capacity = capacity;
            _buffer = Channel.CreateBounded<T>(new BoundedChannelOptions(capacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
        }

        public int Capacity { get; }

        /// <summary>How long a write stuck on a stalled consumer may take once it has overflowed.</summary>
        public static TimeSpan StalledWriteGrace { get; } = TimeSpan.FromSeconds(10);

        public bool Overflowed => _overflowed.Task.IsCompleted;

        /// <summary>Queues an item first (before the stream starts), as for a snapshot.</summary>
        public void Offer(T item)
        {
            if ((_filter is null || _filter(item)) && !_buffer.Writer.TryWrite(item) && _overflowed.TrySetResult())
            {
                Interlocked.Increment(ref _owner._dropped);
                _buffer.Writer.TryComplete();
            }
        }

        /// <summary>
        /// Writes buffered items to <paramref name="stream"/> until the call ends. Once the buffer
        /// has overflowed, nothing more is written and the call ends with ResourceExhausted; a write
        /// stuck on a consumer that reads nothing gets <see cref="StalledWriteGrace"/> to complete
        /// (so the status follows the data in order) before the stream is reset.
        /// </summary>
        public async Task PumpAsync(IServerStreamWriter<T> stream, string what, CancellationToken callToken, Action onDropped)
        {
            using var writes = CancellationTokenSource.CreateLinkedTokenSource(callToken);
            try
            {
                while (!Overflowed && await _buffer.Reader.WaitToReadAsync(callToken))
                {
                    while (!Overflowed && _buffer.Reader.TryRead(out var item))
                    {
                        var write = stream.WriteAsync(item, writes.Token);
                        if (!write.IsCompleted && await Task.WhenAny(write, _overflowed.Task) != write
                            && await Task.WhenAny(write, Task.Delay(StalledWriteGrace, callToken)) != write)
                        {
                            await writes.CancelAsync();
                        }

                        await write;
                    }
                }
            }
            catch (OperationCanceledException) when (Overflowed && !callToken.IsCancellationRequested)
            {
                // The stuck write was abandoned because the consumer overflowed: that is the reason to report.
                throw Dropped(what, onDropped);
            }

            if (Overflowed && !callToken.IsCancellationRequested)
            {
                throw Dropped(what, onDropped);
            }
        }

        private RpcException Dropped(string what, Action onDropped)
        {
            onDropped();
            return ControlErrors.Error(StatusCode.ResourceExhausted, "events_overflow",
                $"this {what} consumer fell behind: {Capacity} messages were buffered (Overlay:Control:EventsBufferSize); read faster, filter, and reconnect");
        }

        public void Dispose()
        {
            _owner.Remove(this);
            _buffer.Writer.TryComplete();
        }
    }
}
