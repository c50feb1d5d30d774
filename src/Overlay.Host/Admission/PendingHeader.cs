namespace Overlay.Host.Admission;

/// <summary>
/// A relay stream's place among the streams waiting for their header (<see cref="LinkAdmission.PendingHeaders"/>),
/// taken by <see cref="RelayStreamGate"/> before the gRPC pipeline and handed to the tunnel server in the
/// request's features: it gives the place back once the header is processed, the gate when the stream ends.
/// </summary>
internal sealed class PendingHeader(KeyedLimiter limiter, string source, TimeSpan pace)
{
    private int _released;

    /// <summary>The previous hop's fairness key.</summary>
    public string Source { get; } = source;

    /// <summary>How long the stream must wait for its source's header rate before it is read.</summary>
    public TimeSpan Pace { get; } = pace;

    /// <summary>Gives the place back; only the first call counts.</summary>
    public void Release()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0)
        {
            limiter.Exit(Source);
        }
    }
}
