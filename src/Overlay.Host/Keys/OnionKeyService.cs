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
/// when the replay cache nears full, retires old epochs after the overlap window, republishes
/// the descriptor, and saves the live epochs on shutdown.
/// </summary>
internal sealed class OnionKeyService : BackgroundService
{
    private readonly NodeState _node;
    private readonly OverlayOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<OnionKeyService> _logger;
    private readonly SemaphoreSlim _rotateNow = new(0, 1);
    private readonly Lock _rotationLock = new();

    public OnionKeyService(NodeState node, IOptions<OverlayOptions> options, TimeProvider time, ILogger<OnionKeyService> logger)
    {
        _node = node;
        _options = options.Value;
        _time = time;
        _logger = logger;
    }

    private OnionKeyOptions KeyOptions => _options.OnionKeys;

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

        return base.StartAsync(cancellationToken);
    }

    /// <summary>Rotates now (the control API's "rotate keys", and the replay-cache trigger).</summary>
    public void RotateSoon()
    {
        lock (_rotationLock)
        {
            // One pending request is enough: several triggers before the loop wakes mean one rotation.
            if (_rotateNow.CurrentCount == 0)
            {
                _rotateNow.Release();
            }
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            while (true)
            {
                var now = _time.GetUtcNow();
                var current = _node.Keys.Current!;
                var wait = Min(current.Key.ExpiresAt - now, NextRetirement(now) - now);
                var early = await WaitAsync(wait, stoppingToken);
                now = _time.GetUtcNow();
                if (early || _node.Keys.Current!.Key.ExpiresAt <= now)
                {
                    Rotate(now, publish: true);
                }

                RetireExpired(now);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // A normal end, also when only this service is stopped (the host would take a cancelled task as a failure).
            Log.BackgroundServiceStopped(_logger, nameof(OnionKeyService));
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        try
        {
            OnionKeyStore.Save(_options.DataDirectory, _node.Keys.Epochs);
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            Log.OnionKeySaveFailed(_logger, exception);
        }
    }

    private async Task<bool> WaitAsync(TimeSpan delay, CancellationToken stoppingToken)
    {
        delay = delay < TimeSpan.Zero ? TimeSpan.Zero : delay;
        var timer = Task.Delay(delay, _time, stoppingToken);
        var signal = _rotateNow.WaitAsync(stoppingToken);
        var first = await Task.WhenAny(timer, signal);
        await first; // surfaces cancellation
        return first == signal;
    }

    private void Rotate(DateTimeOffset now, bool publish)
    {
        lock (_rotationLock)
        {
            var epochNumber = OnionKeyStore.NextEpoch(_options.DataDirectory);
            var key = OnionKey.Create(epochNumber, now, now + KeyOptions.EpochLength, exportable: true);
            var epoch = new OnionKeyEpoch(key, new ReplayCache(KeyOptions.ReplayCacheCapacity, KeyOptions.RotateWhenReplayCacheFraction));
            Watch(epoch);
            _node.Keys.Add(epoch);
            Log.OnionKeyRotated(_logger, epochNumber, key.ExpiresAt);
        }

        if (publish && _node.LinkEndpoint is not null)
        {
            _node.Publish(now);
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

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    public override void Dispose()
    {
        _rotateNow.Dispose();
        base.Dispose();
    }
}
