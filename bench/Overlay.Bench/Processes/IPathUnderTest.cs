namespace Overlay.Bench.Processes;

/// <summary>
/// What the multi-process harness times on each side, an application's view of it: the overlay
/// through node 0's control API, or the plain chain of separate processes.
/// </summary>
internal interface IPathUnderTest
{
    /// <summary>Short name for reports ("tunnel", "plain chain").</summary>
    string Name { get; }

    /// <summary>Sends <paramref name="bytes"/> one way through <paramref name="route"/> and returns the seconds until the far end confirmed it all.</summary>
    Task<double> SendAsync(int[] route, long bytes, CancellationToken cancellationToken);

    /// <summary>Opens a duplex path through <paramref name="route"/> for round trips.</summary>
    Task<IRoundTrips> OpenAsync(int[] route, CancellationToken cancellationToken);

    /// <summary>A fresh path through <paramref name="route"/> with one small request and its end; milliseconds to the first reply byte.</summary>
    Task<double> FirstReplyAsync(int[] route, CancellationToken cancellationToken);
}

/// <summary>An open duplex path.</summary>
internal interface IRoundTrips : IAsyncDisposable
{
    /// <summary>One request written and its echo read back whole; milliseconds.</summary>
    Task<double> RoundTripAsync(CancellationToken cancellationToken);
}
