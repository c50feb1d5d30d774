using Overlay.Errors;
using Overlay.Onion;

namespace Overlay.Host.Tunnels.Streams;

/// <summary>
/// The origin's reusable routes, one per destination and relay count (or explicit route). A new
/// stream goes on the current route while it takes more; otherwise one new route is built (by
/// every stream waiting at once, together) and replaces it. A route that failed is gone: the next
/// stream builds a new one.
/// </summary>
internal sealed class StreamRoutes(Func<TunnelRequest, CancellationToken, Task<OverlayTunnel>> openRoute, StreamOptions options,
    DeadlineClass maxDeadline, TimeSpan defaultDeadline, TimeProvider time)
{
    // A stream that finds every route it was offered full or failed gives up after this many builds.
    private const int MaxBuilds = 3;
    private readonly Lock _gate = new();
    private readonly Dictionary<RouteKey, StreamRoute> _routes = [];
    private readonly Dictionary<RouteKey, Task<StreamRoute>> _building = [];

    /// <summary>Routes open now (a test and metrics view).</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _routes.Count;
            }
        }
    }

    /// <summary>Opens a stream on a route to where <paramref name="request"/> asks, building the route if none takes it.</summary>
    public async Task<RouteStream> OpenAsync(TunnelRequest request, CancellationToken cancellationToken)
    {
        if (request.Mode != TunnelMode.Duplex)
        {
            throw new ArgumentException("only duplex tunnels can share a route", nameof(request));
        }

        var streamDeadline = DeadlineClasses.FromTimeSpan(request.Deadline ?? defaultDeadline).ToTimeSpan();
        var key = RouteKey.Of(request);
        for (var builds = 0; ; )
        {
            Task<StreamRoute>? building;
            lock (_gate)
            {
                if (_routes.TryGetValue(key, out var current))
                {
                    if (current.TryOpenStream(request.Service, streamDeadline) is { } stream)
                    {
                        return new RouteStream(current, stream, streamDeadline, time, cancellationToken);
                    }

                    _routes.Remove(key);
                }

                if (!_building.TryGetValue(key, out building))
                {
                    if (builds++ == MaxBuilds)
                    {
                        throw new TunnelException(TunnelErrorKind.LimitExceeded, 0, $"{MaxBuilds} new routes in a row took no stream");
                    }

                    building = BuildAsync(key, request, streamDeadline);
                    _building[key] = building;
                }
            }

            await building.WaitAsync(cancellationToken);
        }
    }

    // The route outlives the stream that asked for it: it is built (within its own deadline) whatever
    // that caller does, and each waiter stops waiting on its own cancellation.
    private async Task<StreamRoute> BuildAsync(RouteKey key, TunnelRequest request, TimeSpan streamDeadline)
    {
        // Run on after the lock is released: the dictionary is updated under it again.
        await Task.Yield();
        try
        {
            var lifetime = options.RouteLifetime + streamDeadline;
            var wanted = DeadlineClasses.FromTimeSpan(lifetime);
            var deadline = wanted <= maxDeadline ? wanted : maxDeadline;
            var tunnel = await openRoute(new TunnelRequest
            {
                Destination = request.Destination,
                Relays = request.Relays,
                Route = request.Route,
                Service = StreamFrames.RouteService,
                Deadline = deadline.ToTimeSpan(),
            }, CancellationToken.None);
            var route = new StreamRoute(tunnel, deadline.ToTimeSpan(), options, time, ended => Forget(key, ended));
            lock (_gate)
            {
                _routes[key] = route;
            }

            return route;
        }
        finally
        {
            lock (_gate)
            {
                _building.Remove(key);
            }
        }
    }

    private void Forget(RouteKey key, StreamRoute route)
    {
        lock (_gate)
        {
            if (_routes.TryGetValue(key, out var current) && current == route)
            {
                _routes.Remove(key);
            }
        }
    }

    /// <summary>Shutdown: no route takes another stream, and each closes once its streams are over (at once if idle).</summary>
    public void Drain()
    {
        StreamRoute[] routes;
        lock (_gate)
        {
            routes = [.. _routes.Values];
            _routes.Clear();
        }

        foreach (var route in routes)
        {
            route.Drain();
        }
    }
}
