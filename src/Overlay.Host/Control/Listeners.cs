using System.Collections.Concurrent;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Overlay.Errors;
using Overlay.Host.Options;
using Overlay.Host.Tunnels;
using Overlay.Onion;

namespace Overlay.Host.Control;

/// <summary>
/// An incoming tunnel offered to a listening application, waiting for Accept. The destination
/// handler holds the tunnel (and its link call) until the Accept call has finished with it.
/// </summary>
internal sealed class PendingTunnel(string id, IncomingTunnel tunnel, ControlListener listener, DateTimeOffset receivedAt, CancellationToken tunnelToken)
{
    private const int Offered = 0;
    private const int Taken = 1;
    private const int Refused = 2;

    private readonly TaskCompletionSource<bool> _decision = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _state;

    public string Id { get; } = id;

    public IncomingTunnel Tunnel { get; } = tunnel;

    public ControlListener Listener { get; } = listener;

    public DateTimeOffset ReceivedAt { get; } = receivedAt;

    /// <summary>Fires at the tunnel's deadline or when its link ends.</summary>
    public CancellationToken TunnelToken { get; } = tunnelToken;

    /// <summary>True once taken, false once refused (by the application, a timeout or the listener leaving).</summary>
    public Task<bool> Decision => _decision.Task;

    /// <summary>Completes when the Accept call is done with the tunnel (faulted with the reason it failed).</summary>
    public Task Done => _done.Task;

    public bool TryTake()
    {
        if (Interlocked.CompareExchange(ref _state, Taken, Offered) != Offered)
        {
            return false;
        }

        _decision.TrySetResult(true);
        return true;
    }

    public bool TryRefuse()
    {
        if (Interlocked.CompareExchange(ref _state, Refused, Offered) != Offered)
        {
            return false;
        }

        _decision.TrySetResult(false);
        return true;
    }

    public void Finish(Exception? failure)
    {
        if (failure is null)
        {
            _done.TrySetResult();
        }
        else
        {
            _done.TrySetException(failure);
        }
    }
}

/// <summary>One listening application: a bounded queue of offers drained into its Listen call.</summary>
internal sealed class ControlListener(ControlCaller client, string? service, int capacity)
{
    private readonly Channel<PendingTunnel> _offers = Channel.CreateBounded<PendingTunnel>(new BoundedChannelOptions(capacity)
    {
        SingleReader = true,
        FullMode = BoundedChannelFullMode.Wait,
    });

    public ControlCaller Client { get; } = client;

    /// <summary>The named service it listens for; null for the default service.</summary>
    public string? Service { get; } = service;

    public ChannelReader<PendingTunnel> Offers => _offers.Reader;

    public bool TryOffer(PendingTunnel tunnel) => _offers.Writer.TryWrite(tunnel);

    public void Complete() => _offers.Writer.TryComplete();
}

/// <summary>The listening applications, per service and round robin within one, and the offers waiting for Accept.</summary>
/// <param name="firstPick">Where the round robin starts (tests start it near the counter's wrap).</param>
internal sealed class ListenerRegistry(IOptions<OverlayOptions> options, ILogger<ListenerRegistry> logger, int firstPick = 0)
{
    private readonly ControlEndpointOptions _options = options.Value.Control;
    private readonly List<ControlListener> _listeners = [];
    private readonly Dictionary<string, int> _nextByService = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private readonly ConcurrentDictionary<string, PendingTunnel> _pending = new(StringComparer.Ordinal);
    private int _next = firstPick;
    private long _delivered;
    private long _echoed;
    private long _refused;

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _listeners.Count;
            }
        }
    }

    public long DeliveredTotal => Interlocked.Read(ref _delivered);

    public long EchoedTotal => Interlocked.Read(ref _echoed);

    public long RefusedTotal => Interlocked.Read(ref _refused);

    /// <summary>Registers a listener, or returns the limit that refused it (the node's or the client's).</summary>
    public ControlListener? Register(ControlCaller client, string? service, out string? refusedBy)
    {
        var listener = new ControlListener(client, service, _options.MaxPendingPerListener);
        lock (_lock)
        {
            refusedBy = _listeners.Count >= _options.MaxListeners
                ? $"{_options.MaxListeners} applications already listen (Overlay:Control:MaxListeners)"
                : _listeners.Count(l => l.Client == client) >= _options.MaxListenersPerClient
                    ? $"this client already holds {_options.MaxListenersPerClient} listening registrations (Overlay:Control:MaxListenersPerClient)"
                    : null;
            if (refusedBy is not null)
            {
                return null;
            }

            _listeners.Add(listener);
        }

        ControlLog.ListenerRegistered(logger, client.Name);
        return listener;
    }

    /// <summary>Registers a listener for the default service; null when a limit refused it.</summary>
    public ControlListener? Register(ControlCaller client) => Register(client, null, out _);

    /// <summary>Removes the listener and refuses the offers it had not taken.</summary>
    public void Unregister(ControlListener listener)
    {
        lock (_lock)
        {
            _listeners.Remove(listener);
        }

        listener.Complete();
        foreach (var pending in _pending.Values)
        {
            if (pending.Listener == listener)
            {
                pending.TryRefuse();
            }
        }

        ControlLog.ListenerUnregistered(logger, listener.Client.Name);
    }

    /// <summary>The next listener for <paramref name="service"/> (null: the default service), or null when none listens for it.</summary>
    public ControlListener? Pick(string? service = null)
    {
        lock (_lock)
        {
            var count = 0;
            foreach (var listener in _listeners)
            {
                count += listener.Service == service ? 1 : 0;
            }

            if (count == 0)
            {
                return null;
            }

            // The index stays below the count, so it never wraps however many offers there are.
            var next = service is null ? _next : _nextByService.GetValueOrDefault(service);
            var index = (int)((uint)next % (uint)count);
            if (service is null)
            {
                _next = index + 1;
            }
            else
            {
                _nextByService[service] = index + 1;
            }

            foreach (var listener in _listeners)
            {
                if (listener.Service == service && index-- == 0)
                {
                    return listener;
                }
            }

            throw new InvalidOperationException("unreachable: the listener count changed under the lock");
        }
    }

    public PendingTunnel? Find(string id) => _pending.GetValueOrDefault(id);

    public bool TryOffer(PendingTunnel pending)
    {
        _pending[pending.Id] = pending;
        if (pending.Listener.TryOffer(pending))
        {
            return true;
        }

        _pending.TryRemove(pending.Id, out _);
        return false;
    }

    public void Forget(PendingTunnel pending) => _pending.TryRemove(pending.Id, out _);

    public void CountDelivered() => Interlocked.Increment(ref _delivered);

    public void CountEchoed() => Interlocked.Increment(ref _echoed);

    public void CountRefused() => Interlocked.Increment(ref _refused);
}

/// <summary>
/// The destination handler: a tunnel that ends here goes to a listening application if one is
/// registered (offered, then streamed through its Accept call), else to the echo handler as
/// before. Nothing is buffered here: the Accept call reads the tunnel as it writes to the
/// application, so a slow application slows only its own tunnel.
/// </summary>
internal sealed class ListenerDispatcher(ListenerRegistry listeners, IOptions<OverlayOptions> options, TimeProvider time) : ITunnelHandler
{
    private readonly EchoTunnelHandler _echo = new();
    private readonly TimeSpan _acceptTimeout = options.Value.Control.AcceptTimeout;
    private readonly Dictionary<string, ControlServiceOptions> _services = options.Value.Control.Services;

    public bool Hosts(string service) => _services.ContainsKey(service);

    public Task HandleAsync(IncomingTunnel tunnel, CancellationToken cancellationToken) => HandleAsync(tunnel, tunnel.Service, cancellationToken);

    /// <summary>Hands <paramref name="tunnel"/> to a listener of <paramref name="service"/> (the tunnel is only passed on, never read here).</summary>
    internal async Task HandleAsync(IncomingTunnel tunnel, string? service, CancellationToken cancellationToken)
    {
        var listener = listeners.Pick(service);
        if (listener is null && service is not null)
        {
            // The echo is the default service's only: a named one is its owner's or nobody's.
            listeners.CountRefused();
            throw new TunnelException(TunnelErrorKind.DestinationRefused, 0, $"no application listens for service '{service}'");
        }

        if (listener is null)
        {
            listeners.CountEchoed();
            await _echo.HandleAsync(tunnel, cancellationToken);
            return;
        }

        var pending = new PendingTunnel(ControlTunnels.NewId(), tunnel, listener, time.GetUtcNow(), cancellationToken);
        if (!listeners.TryOffer(pending))
        {
            listeners.CountRefused();
            throw new TunnelException(TunnelErrorKind.Busy, 0, "the listening application has too many tunnels waiting");
        }

        try
        {
            bool taken;
            using (var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                wait.CancelAfter(_acceptTimeout);
                try
                {
                    taken = await pending.Decision.WaitAsync(wait.Token);
                }
                catch (OperationCanceledException)
                {
                    // Not accepted in time (or the tunnel ended): refuse, unless Accept won the race,
                    // in which case the Accept call owns the tunnel until it is done.
                    taken = !pending.TryRefuse();
                    if (!taken && cancellationToken.IsCancellationRequested)
                    {
                        throw;
                    }
                }
            }

            if (!taken)
            {
                listeners.CountRefused();
                throw new TunnelException(TunnelErrorKind.DestinationRefused, 0, "no listening application accepted the tunnel");
            }

            listeners.CountDelivered();
            // Bound by the tunnel's token as well: an Accept call that dies before it reports
            // must not hold the tunnel (and the node's drain) for good.
            await pending.Done.WaitAsync(cancellationToken);
        }
        finally
        {
            listeners.Forget(pending);
        }
    }

    public static Overlay.Protocol.Control.V1.TunnelMode ToWire(TunnelMode mode) =>
        mode == TunnelMode.OneWay ? Overlay.Protocol.Control.V1.TunnelMode.OneWay : Overlay.Protocol.Control.V1.TunnelMode.Duplex;
}
