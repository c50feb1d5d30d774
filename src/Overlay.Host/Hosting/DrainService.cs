using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Overlay.Host.Options;
using Overlay.Host.Tunnels;

namespace Overlay.Host;

/// <summary>
/// Graceful drain: when the node is asked to stop it reports not ready (health NOT_SERVING),
/// refuses new tunnels with Busy, and lets the open ones finish for up to
/// <c>Overlay:Tunnels:DrainTimeout</c>. The wait runs in the host's "stopping" phase, before any
/// hosted service, Kestrel included, is stopped: the node still accepts connections, so peers get
/// a typed Busy and probes see NOT_SERVING instead of a refused connection.
/// </summary>
internal sealed partial class DrainService(TunnelRegistry registry, IHostApplicationLifetime lifetime, IOptions<OverlayOptions> options, ILogger<DrainService> logger)
    : IHostedLifecycleService
{
    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        // Stop advertising readiness and accepting tunnels the moment shutdown is requested.
        lifetime.ApplicationStopping.Register(registry.BeginDrain);
        return Task.CompletedTask;
    }

    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        registry.BeginDrain();
        if (registry.Active == 0)
        {
            return;
        }

        LogDraining(logger, registry.Active);
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bound.CancelAfter(options.Value.Tunnels.DrainTimeout);
        try
        {
            await registry.WaitForIdleAsync(bound.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            LogDrainTimedOut(logger, registry.Active);
        }
        catch (OperationCanceledException)
        {
            // The host was told to stop at once (its shutdown timeout, or a kill): no drain.
            LogDrainSkipped(logger, registry.Active);
        }
    }

    [LoggerMessage(102, LogLevel.Information, "Draining: waiting for {Count} open tunnels before stopping")]
    private static partial void LogDraining(ILogger logger, int count);

    [LoggerMessage(104, LogLevel.Information, "Stopping at once with {Count} tunnels open")]
    private static partial void LogDrainSkipped(ILogger logger, int count);

    [LoggerMessage(103, LogLevel.Warning, "Drain bound reached with {Count} tunnels still open; stopping anyway")]
    private static partial void LogDrainTimedOut(ILogger logger, int count);
}
