using System.Threading.Channels;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Overlay.Host.Options;
using Overlay.Host.Telemetry;
using Overlay.Identity;
using Overlay.Onion;

namespace Overlay.Host.Keys;

/// <summary>
/// Keeps the node's onion keys: reloads the epochs saved at the last graceful shutdown (each
/// with its replay cache, or not at all), starts a fresh epoch, rotates on schedule and early
/// when asked (the control API, a nearly full replay cache) but no more often than
/// <c>Overlay:OnionKeys:MinEarlyRotationInterval</c>, holds at most
/// <c>Overlay:OnionKeys:MaxLiveEpochs</c>, retires old epochs after the overlap window,
/// republishes the descriptor, and saves the live epochs once the node has drained on shutdown.
/// </summary>
internal sealed class OnionKeyService : BackgroundService, IHostedLifecycleService
{
    // The longest single timer wait; the loop recomputes its wake-up time after it.
    private static readonly TimeSpan LongestWait = TimeSpan.FromDays(7);

    private readonly NodeState _node;
    private readonly OverlayOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<OnionKeyService> _logger;

    // One slot: several requests before the loop takes one mean one rotation. A request stays in
    // the channel until the loop reads it, so none is lost to a timer that fired first.
    private readonly Channel<bool> _requests = Channel.CreateBounded<bool>(
        new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true });

    private readonly Lock _rotationLock = new();
    private TaskCompletionSource<OnionKeyEpoch> _nextRotation = NewRotation();
    private TaskCompletionSource<DateTimeOffset> _sleeping = NewSleep();
    private int _saved;

    public OnionKeyService(NodeState node, IOptions<OverlayOptions> options, TimeProvider time, ILogger<OnionKeyService> logger)
    {
        _node = node;
        _options = options.Value;
        _time = time;
        _logger = logger;
    }

    private OnionKeyOptions KeyOptions => _options.OnionKeys;

    /// <summary>
    /// Completes, with the time it will next wake, once the rotation loop has acted on everything
    /// due and waits; replaced the moment it is woken. Lets a test advance a fake clock only when
    /// the loop's timer is set.
    /// </summary>
    internal Task<DateTimeOffset> Sleeping => Volatile.Read(ref _sleeping).Task;

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        // Before Kestrel accepts anything: headers need a key.
        var now = _time.GetUtcNow();
        var loaded = OnionKeyStore.LoadAndConsume(_options.DataDirectory, KeyOptions, now);
        foreach (var epoch in loaded.Epochs)
        {
            Watch(epoch);
            _node.Keys.Add(epoch);
        }

        if (loaded.Epochs.Count > 0)
        {
            Log.OnionKeysReloaded(_logger, loaded.Epochs.Count);
        }

        foreach (var discarded in loaded.Discarded)
        {
            Log.RelayFailed(_logger, $"discarded onion key state {discarded.Path}: {discarded.Reason}", null);
        }

        if (_node.Keys.Current is not { } current || current.Key.ExpiresAt <= now)
        {
            Rotate(now, publish: false);
        }
        else
        {
            RetireBeyondCap();
        }

        return base.StartAsync(cancellationToken);
    }

    /// <summary>
    /// Asks for an early rotation (the control API's "rotate keys", and the replay-cache trigger).
    /// It happens now, or, within <c>Overlay:OnionKeys:MinEarlyRotationInterval</c> of the last
    /// rotation, at the moment that interval ends: deferred, never dropped.
    /// </summary>
    public EarlyRotation RotateSoon()
    {
        EarlyRotation request;
        lock (_rotationLock)
        {
            var current = _node.Keys.Current ?? throw new InvalidOperationException("no onion key yet: the node has not started");
            request = new EarlyRotation(current, EarlyRotationAt(current), _nextRotation.Task);
        }

        MarkAwake(); // before the write, which may wake the loop at once
        _requests.Writer.TryWrite(true);
        return request;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var earlyRequested = false;
        try
        {
            while (true)
            {
                var now = _time.GetUtcNow();
                var current = _node.Keys.Current!;
                var earlyAt = EarlyRotationAt(current);
                if (current.Key.ExpiresAt <= now || (earlyRequested && earlyAt <= now))
                {
                    Rotate(now, publish: true);
                    earlyRequested = false;
                    continue;
                }

                RetireExpired(now);
                var wakeAt = Min(current.Key.ExpiresAt, NextRetirement(now));
                wakeAt = earlyRequested ? Min(wakeAt, earlyAt) : wakeAt;
                if (await WaitForRequestAsync(wakeAt, stoppingToken) && !earlyRequested)
                {
                    earlyRequested = true;
                    var at = EarlyRotationAt(_node.Keys.Current!);
                    if (at > _time.GetUtcNow())
                    {
                        KeysLog.EarlyRotationDeferred(_logger, at);
                    }
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // A normal end, also when only this service is stopped (the host would take a cancelled task as a failure).
            Log.BackgroundServiceStopped(_logger, nameof(OnionKeyService));
        }
        finally
        {
            lock (_rotationLock)
            {
                // No rotation comes any more: a caller waiting for one learns it now.
                _nextRotation.TrySetCanceled(stoppingToken);
            }
        }
    }

    /// <summary>
    /// Saves the keys as soon as the node has drained, before Kestrel's own shutdown wait: the
    /// host runs the "stopping" phase in reverse registration order and this service is
    /// registered before <see cref="DrainService"/>, so this runs right after the drain. From
    /// then on no tunnel is admitted (no new replay tag), and the loop is stopped first so no
    /// rotation follows the save. A process killed later still restarts with its keys.
    /// </summary>
    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        SaveOnce();
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        SaveOnce(); // already done in StoppingAsync when a host drove the stop
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private void SaveOnce()
    {
        if (Interlocked.Exchange(ref _saved, 1) != 0)
        {
            return;
        }

        try
        {
            var epochs = _node.Keys.Epochs;
            OnionKeyStore.Save(_options.DataDirectory, epochs);
            KeysLog.OnionKeysSaved(_logger, epochs.Length);
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            Log.OnionKeySaveFailed(_logger, exception);
        }
    }

    // Waits until wakeAt or a request, whichever is first; true when a request was taken.
    private async Task<bool> WaitForRequestAsync(DateTimeOffset wakeAt, CancellationToken stoppingToken)
    {
        var delay = wakeAt - _time.GetUtcNow();
        delay = delay < TimeSpan.Zero ? TimeSpan.Zero : Min(delay, LongestWait);
        using var timer = new CancellationTokenSource(delay, _time);
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        using var onTimer = timer.Token.Register(() =>
        {
            MarkAwake();
            wait.Cancel();
        });
        var sleeping = Volatile.Read(ref _sleeping);
        if (!timer.IsCancellationRequested && !_requests.Reader.TryPeek(out _))
        {
            sleeping.TrySetResult(wakeAt);
        }

        // The timer ends the wait by cancelling it: a wake for the schedule, not a failure (a request that
        // came meanwhile is still taken below). Only the node's own stop ends the loop.
        await ((Task)_requests.Reader.WaitToReadAsync(wait.Token).AsTask()).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        stoppingToken.ThrowIfCancellationRequested();
        return _requests.Reader.TryRead(out _);
    }

    private void MarkAwake() => Volatile.Write(ref _sleeping, NewSleep());

    // An early rotation may follow the last one (the current key's start) after MinEarlyRotationInterval; the schedule may come first.
    private DateTimeOffset EarlyRotationAt(OnionKeyEpoch current) =>
        Min(current.Key.ValidFrom + KeyOptions.MinEarlyRotationInterval, current.Key.ExpiresAt);

    private void Rotate(DateTimeOffset now, bool publish)
    {
        OnionKeyEpoch epoch;
        TaskCompletionSource<OnionKeyEpoch> rotated;
        lock (_rotationLock)
        {
            var epochNumber = OnionKeyStore.NextEpoch(_options.DataDirectory);
            var key = OnionKey.Create(epochNumber, now, now + KeyOptions.EpochLength, exportable: true);
            epoch = new OnionKeyEpoch(key, new ReplayCache(KeyOptions.ReplayCacheCapacity, KeyOptions.RotateWhenReplayCacheFraction));
            Watch(epoch);
            _node.Keys.Add(epoch);
            Log.OnionKeyRotated(_logger, epochNumber, key.ExpiresAt);
            RetireBeyondCap();
            rotated = _nextRotation;
            _nextRotation = NewRotation();
        }

        if (publish && _node.LinkEndpoint is not null)
        {
            _node.Publish(now);
        }

        rotated.TrySetResult(epoch);
    }

    // Each epoch pins a replay cache of up to ReplayCacheCapacity tags: early rotations must not pile them up.
    private void RetireBeyondCap()
    {
        var epochs = _node.Keys.Epochs;
        for (var i = epochs.Length - 1; i >= KeyOptions.MaxLiveEpochs; i--)
        {
            if (_node.Keys.Retire(epochs[i].Epoch))
            {
                KeysLog.OldestEpochRetired(_logger, epochs[i].Epoch, KeyOptions.MaxLiveEpochs);
            }
        }
    }

    private void Watch(OnionKeyEpoch epoch) => epoch.ReplayCache.NearlyFull += _ =>
    {
        Log.ReplayCacheNearlyFull(_logger, epoch.Epoch);
        if (_node.Keys.Current == epoch)
        {
            RotateSoon();
        }
    };

    // Old epochs stay for the overlap window after their successor took over, then go.
    private DateTimeOffset NextRetirement(DateTimeOffset now)
    {
        var epochs = _node.Keys.Epochs;
        var next = DateTimeOffset.MaxValue;
        for (var i = 1; i < epochs.Length; i++)
        {
            var retireAt = epochs[i - 1].Key.ValidFrom + KeyOptions.OverlapWindow;
            next = retireAt < next ? retireAt : next;
        }

        return next == DateTimeOffset.MaxValue ? now + KeyOptions.EpochLength : next;
    }

    private void RetireExpired(DateTimeOffset now)
    {
        var epochs = _node.Keys.Epochs;
        for (var i = 1; i < epochs.Length; i++)
        {
            if (epochs[i - 1].Key.ValidFrom + KeyOptions.OverlapWindow <= now && _node.Keys.Retire(epochs[i].Epoch))
            {
                Log.OnionKeyRetired(_logger, epochs[i].Epoch);
            }
        }
    }

    private static TaskCompletionSource<OnionKeyEpoch> NewRotation() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private static TaskCompletionSource<DateTimeOffset> NewSleep() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    private static DateTimeOffset Min(DateTimeOffset a, DateTimeOffset b) => a < b ? a : b;
}
