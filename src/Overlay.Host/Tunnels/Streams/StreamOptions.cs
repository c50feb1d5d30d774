namespace Overlay.Host.Tunnels.Streams;

/// <summary>Reusable routes and their streams (Overlay:Tunnels:Streams; docs/protocol.md section 7.9).</summary>
public sealed class StreamOptions
{
    /// <summary>Streams one route carries over its life; the origin then builds a new one, a destination resets the rest with LimitExceeded. Default 256.</summary>
    public int MaxStreamsPerRoute { get; set; } = 256;

    /// <summary>Streams open at once on one route; beyond it the origin builds another route, a destination resets with LimitExceeded. Default 32.</summary>
    public int MaxConcurrentStreamsPerRoute { get; set; } = 32;

    /// <summary>A route with no open stream for this long is closed. Default 30 s.</summary>
    public TimeSpan RouteIdleTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>A route takes new streams for this long after it was built. Default 10 min.</summary>
    public TimeSpan RouteLifetime { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Each failure names its key; empty when valid.</summary>
    internal IEnumerable<string> Validate()
    {
        if (MaxStreamsPerRoute is < 1 or > 65_536)
        {
            yield return $"Overlay:Tunnels:Streams:MaxStreamsPerRoute must be 1..65536, not {MaxStreamsPerRoute}";
        }

        if (MaxConcurrentStreamsPerRoute is < 1 or > 1024)
        {
            yield return $"Overlay:Tunnels:Streams:MaxConcurrentStreamsPerRoute must be 1..1024, not {MaxConcurrentStreamsPerRoute}";
        }

        if (RouteIdleTimeout <= TimeSpan.Zero || RouteIdleTimeout > TimeSpan.FromHours(1))
        {
            yield return $"Overlay:Tunnels:Streams:RouteIdleTimeout must be above zero and at most one hour, not {RouteIdleTimeout}";
        }

        if (RouteLifetime <= TimeSpan.Zero || RouteLifetime > TimeSpan.FromHours(1))
        {
            yield return $"Overlay:Tunnels:Streams:RouteLifetime must be above zero and at most one hour, not {RouteLifetime}";
        }
    }
}
