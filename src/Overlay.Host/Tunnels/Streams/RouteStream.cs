using Overlay.Errors;

namespace Overlay.Host.Tunnels.Streams;

/// <summary>
/// What an origin's stream holds beside its frames: its own deadline and its owner's cancellation,
/// each of which resets the stream alone, never its route or its siblings.
/// </summary>
internal sealed class RouteStream : IAsyncDisposable
{
    private readonly CancellationTokenSource _deadline;
    private readonly CancellationTokenRegistration _onDeadline;
    private readonly CancellationTokenRegistration _onCancel;
    private int _disposed;

    public RouteStream(StreamRoute route, MuxStream stream, TimeSpan deadline, TimeProvider time, CancellationToken cancellationToken)
    {
        Route = route;
        Stream = stream;
        _deadline = new CancellationTokenSource(deadline, time);
        _onDeadline = _deadline.Token.Register(static state => ((RouteStream)state!).Reset(TunnelErrorKind.DeadlineExceeded, "the stream's deadline passed"), this);
        _onCancel = cancellationToken.Register(static state => ((RouteStream)state!).Reset(TunnelErrorKind.Cancelled, "the stream was cancelled"), this);
    }

    public StreamRoute Route { get; }

    public MuxStream Stream { get; }

    /// <summary>Resets the stream as cancelled unless it already ended both ways.</summary>
    public Task AbortAsync() => ResetAsync(TunnelErrorKind.Cancelled, "the stream was cancelled");

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _onDeadline.DisposeAsync();
        await _onCancel.DisposeAsync();
        _deadline.Dispose();
        await AbortAsync();
    }

    private void Reset(TunnelErrorKind kind, string why) => _ = ResetAsync(kind, why);

    private async Task ResetAsync(TunnelErrorKind kind, string why)
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await Stream.ResetAsync(kind, new TunnelException(kind, 0, why), timeout.Token);
        }
        catch (Exception exception) when (exception is TunnelException or OperationCanceledException)
        {
            // The Reset frame could not go out because the route itself failed or stalled: its pump
            // reports that failure to every stream on it, this one included.
        }
    }
}
