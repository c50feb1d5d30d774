using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Overlay.Host.Link.Tls;
using Overlay.Host.Options;
using Overlay.Host.Telemetry;
using Overlay.Identity;
using Overlay.Protocol.V1;

namespace Overlay.Host.Link;

/// <summary>
/// gRPC channels to peers. Tunnel hops share one pooled channel per peer, keyed by node id and
/// endpoint (HTTP/2 multiplexing, another connection when one is full); a directory call borrows
/// that channel when there is one and otherwise uses a short-lived channel of its own, so a node
/// keeps connections only to the peers its tunnels use, never a full mesh. Every connection goes through <see cref="PeerDialPolicy"/> on the address actually
/// dialed, and over TLS (an https endpoint) the server must prove the node id expected of it
/// (<see cref="LinkPeerVerifier"/>). A node whose own links use TLS dials no cleartext endpoint.
/// </summary>
internal sealed class PeerChannels : IDisposable
{
    /// <summary>A pooled channel that carried no call for this long is closed and forgotten.</summary>
    internal static readonly TimeSpan PooledIdleTimeout = TimeSpan.FromMinutes(2);

    private static readonly TimeSpan SweepInterval = TimeSpan.FromSeconds(30);

    private readonly ConcurrentDictionary<PeerKey, PooledPeer> _pooled = new();
    private readonly Lock _createLock = new();
    private readonly LinkEndpointOptions _options;
    private readonly int _maxMessageBytes;
    private readonly PeerDialPolicy _policy;
    private readonly TimeProvider _time;
    private readonly ILogger<PeerChannels> _logger;
    private readonly LinkCertificateIssuer _issuer;
    private readonly LinkPeerVerifier _verifier;
    private readonly bool _tlsOnly;
    private readonly Counter<long> _refusedDials;
    private long _lastSweep;
    private int _disposed;

    public PeerChannels(IOptions<OverlayOptions> options, IMeterFactory meterFactory, NodeState node, LinkCertificateIssuer issuer, LinkPeerVerifier verifier,
        TimeProvider time, ILogger<PeerChannels> logger)
    {
        _options = options.Value.Link;
        _issuer = issuer;
        _verifier = verifier;
        _tlsOnly = _options.UsesTls;
        _maxMessageBytes = options.Value.Link.MaxMessageBytes;
        _policy = new PeerDialPolicy(_options);
        _time = time;
        _logger = logger;
        _lastSweep = time.GetTimestamp();
        var meter = OverlayTelemetry.NodeMeter(meterFactory, node);
        _refusedDials = meter.CreateCounter<long>("overlay.link.dials.refused", "{dial}",
            "Peer dials refused by the dial policy, by overlay.dial.refusal (non-public, refused-network, cleartext)");
    }

    /// <summary>Tag: why a dial was refused.</summary>
    public const string RefusalTag = "overlay.dial.refusal";

    /// <summary>Whether this node may dial <paramref name="address"/> at all.</summary>
    public DialRefusal Check(IPAddress address) => _policy.Check(address);

    /// <summary>Whether this node may dial <paramref name="endpoint"/>: its scheme, and its address when it is a literal.</summary>
    public DialRefusal Check(Uri endpoint)
    {
        if (_tlsOnly && endpoint.Scheme != Uri.UriSchemeHttps)
        {
            return DialRefusal.Cleartext;
        }

        return IPAddress.TryParse(endpoint.Host.Trim('[', ']'), out var literal) ? _policy.Check(literal) : DialRefusal.None;
    }

    /// <summary>Pooled channels currently open.</summary>
    internal int PooledCount => _pooled.Count;

    /// <summary>The pooled client for tunnel hops to node <paramref name="id"/> at <paramref name="endpoint"/>.</summary>
    public Protocol.V1.Link.LinkClient Client(NodeId id, Uri endpoint)
    {
        var key = new PeerKey(id, endpoint);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        SweepIfDue();
        while (true)
        {
            if (!_pooled.TryGetValue(key, out var peer))
            {
                // Created under a lock and stored only once built: a failed creation leaves nothing behind.
                lock (_createLock)
                {
                    if (!_pooled.TryGetValue(key, out peer))
                    {
                        peer = new PooledPeer(CreateChannel(endpoint, id, pooledIdleTimeout: TimeSpan.FromMinutes(1), dialed: null), _time);
                        _pooled[key] = peer;
                    }
                }
            }

            if (peer.TryTouch())
            {
                return peer.Client;
            }

            // Retired by a sweep between the lookup and the touch: the next lookup builds a new one.
            ((ICollection<KeyValuePair<PeerKey, PooledPeer>>)_pooled).Remove(new(key, peer));
        }
    }

    /// <summary>Closes every pooled channel to node <paramref name="id"/> (a revoked node), ending the calls they carry.</summary>
    public void Close(NodeId id)
    {
        foreach (var (key, peer) in _pooled)
        {
            if (key.Id == id && ((ICollection<KeyValuePair<PeerKey, PooledPeer>>)_pooled).Remove(new(key, peer)))
            {
                peer.Channel.Dispose();
            }
        }
    }

    /// <summary>Link calls open on the pooled channel to node <paramref name="id"/> at <paramref name="endpoint"/> (tunnel hops this node carries to it).</summary>
    public int OpenCalls(NodeId id, Uri endpoint) => _pooled.TryGetValue(new PeerKey(id, endpoint), out var peer) ? peer.OpenCalls : 0;

    /// <summary>
    /// The pooled channel to node <paramref name="id"/> at <paramref name="endpoint"/> for one
    /// directory call, when tunnel hops already keep one open: the call needs no new connection and
    /// no handshake. Null when there is none. Borrowing does not extend the channel's idle life
    /// (only tunnel hops keep a connection open), and a borrowed channel is not retired until
    /// returned (dispose the result).
    /// </summary>
    public BorrowedChannel? TryBorrow(NodeId id, Uri endpoint)
    {
        // Idle channels are retired here too: a node building no tunnels calls Client() no more.
        SweepIfDue();
        return _pooled.TryGetValue(new PeerKey(id, endpoint), out var peer) && peer.TryBorrow() ? new BorrowedChannel(peer) : null;
    }

    /// <summary>
    /// A channel for one directory exchange with node <paramref name="expected"/> (any node when
    /// null, over TLS); dispose it when done (its connection closes).
    /// </summary>
    public GrpcChannel CreateTransient(Uri endpoint, NodeId? expected) => CreateChannel(endpoint, expected, pooledIdleTimeout: TimeSpan.FromSeconds(5), dialed: null);

    /// <summary>
    /// A channel for one directory call that records in <paramref name="dialed"/> the address its
    /// connection reached (the address an endpoint proof is keyed on) and, over TLS, the node id the
    /// server's certificate proved.
    /// </summary>
    public GrpcChannel CreateTransient(Uri endpoint, NodeId? expected, DialedAddress dialed) => CreateChannel(endpoint, expected, pooledIdleTimeout: TimeSpan.FromSeconds(5), dialed);

    /// <summary>Closes pooled channels that carried no call for <see cref="PooledIdleTimeout"/>.</summary>
    internal void SweepIdle()
    {
        foreach (var (key, peer) in _pooled)
        {
            if (peer.TryRetire(PooledIdleTimeout) && ((ICollection<KeyValuePair<PeerKey, PooledPeer>>)_pooled).Remove(new(key, peer)))
            {
                peer.Channel.Dispose();
            }
        }
    }

    private void SweepIfDue()
    {
        var now = _time.GetTimestamp();
        var last = Interlocked.Read(ref _lastSweep);
        if (_time.GetElapsedTime(last, now) >= SweepInterval && Interlocked.CompareExchange(ref _lastSweep, now, last) == last)
        {
            SweepIdle();
        }
    }

    private GrpcChannel CreateChannel(Uri endpoint, NodeId? expected, TimeSpan pooledIdleTimeout, DialedAddress? dialed)
    {
        var cleartext = endpoint.Scheme != Uri.UriSchemeHttps;
        var handler = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = true,
            InitialHttp2StreamWindowSize = _options.StreamWindowBytes,
            KeepAlivePingDelay = _options.KeepAlivePingDelay,
            KeepAlivePingTimeout = _options.KeepAlivePingTimeout,
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests,
            ConnectTimeout = _options.ConnectTimeout,
            PooledConnectionIdleTimeout = pooledIdleTimeout,
            // A certificate is checked at the handshake only: a busy connection must not carry one past its
            // rotation, so new calls move to a fresh handshake (calls in flight finish on the old one).
            PooledConnectionLifetime = cleartext ? Timeout.InfiniteTimeSpan : _options.CertificateRotation,
            AutomaticDecompression = DecompressionMethods.None,
            UseProxy = false,
            // No traceparent, tracestate, baggage or Request-Id on any link request (docs/protocol.md).
            ActivityHeadersPropagator = null,
            // Refused at connect time, so the caller sees a connection error (a route moves on) like any refused dial.
            ConnectCallback = cleartext && _tlsOnly
                ? (context, _) => ValueTask.FromException<Stream>(Refuse(context.DnsEndPoint.Host, new PeerDialRefusedException(endpoint)))
                : (context, cancellationToken) => ConnectAsync(context.DnsEndPoint, dialed, cancellationToken),
        };
        if (!cleartext)
        {
            handler.SslOptions = LinkTls.Client(() => _issuer.Current.Certificate, certificate => _verifier.AcceptServer(certificate, endpoint, expected, dialed));
        }

        return GrpcChannel.ForAddress(endpoint, new GrpcChannelOptions
        {
            HttpHandler = handler,
            DisposeHttpClient = true,
            MaxReceiveMessageSize = _maxMessageBytes,
            MaxSendMessageSize = _maxMessageBytes,
        });
    }

    // Resolves the name and connects only to addresses the policy allows: the check is on the
    // address dialed, so neither a name nor a later rebinding can lead past it.
    private async ValueTask<Stream> ConnectAsync(DnsEndPoint endpoint, DialedAddress? dialed, CancellationToken cancellationToken)
    {
        var host = endpoint.Host.Trim('[', ']');
        var addresses = IPAddress.TryParse(host, out var literal) ? [literal] : await Dns.GetHostAddressesAsync(host, cancellationToken);
        ExceptionDispatchInfo? failure = null;
        PeerDialRefusedException? refused = null;
        foreach (var address in addresses)
        {
            var refusal = _policy.Check(address);
            if (refusal != DialRefusal.None)
            {
                refused ??= new PeerDialRefusedException(host, address, refusal);
                continue;
            }

            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(new IPEndPoint(address, endpoint.Port), cancellationToken);
                dialed?.Set(address);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch (SocketException exception)
            {
                socket.Dispose();
                failure = ExceptionDispatchInfo.Capture(exception); // the next address may answer
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }

        failure?.Throw();
        if (refused is null)
        {
            throw new SocketException((int)SocketError.HostNotFound);
        }

        throw Refuse(host, refused);
    }

    private PeerDialRefusedException Refuse(string host, PeerDialRefusedException refused)
    {
        LinkLog.DialRefused(_logger, host, refused.Message);
        _refusedDials.Add(1, new KeyValuePair<string, object?>(RefusalTag, refused.Refusal.ToTag()));
        return refused;
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        foreach (var peer in _pooled.Values)
        {
            peer.Channel.Dispose();
        }

        _pooled.Clear();
    }

    /// <summary>One pooled channel, its client counting the calls it carries, and when it was last used.</summary>
    internal sealed class PooledPeer
    {
        private readonly TimeProvider _time;
        private readonly Lock _lock = new();
        private long _lastUsed;
        private int _openCalls;
        private bool _retired;

        public PooledPeer(GrpcChannel channel, TimeProvider time)
        {
            Channel = channel;
            _time = time;
            _lastUsed = time.GetTimestamp();
            Client = new Protocol.V1.Link.LinkClient(channel.Intercept(new CallCounter(this)));
        }

        public GrpcChannel Channel { get; }

        public Protocol.V1.Link.LinkClient Client { get; }

        public int OpenCalls => Volatile.Read(ref _openCalls);

        public bool TryTouch()
        {
            lock (_lock)
            {
                _lastUsed = _time.GetTimestamp();
                return !_retired;
            }
        }

        // Counted as an open call, so not retired while borrowed, but the idle clock is left alone.
        public bool TryBorrow()
        {
            lock (_lock)
            {
                if (_retired)
                {
                    return false;
                }

                _openCalls++;
                return true;
            }
        }

        public void Return()
        {
            lock (_lock)
            {
                _openCalls--;
            }
        }

        // Under the same lock as TryTouch: a channel handed out is never retired before its call starts.
        public bool TryRetire(TimeSpan idle)
        {
            lock (_lock)
            {
                _retired |= OpenCalls == 0 && _time.GetElapsedTime(_lastUsed) >= idle;
                return _retired;
            }
        }

        public void CallStarted()
        {
            lock (_lock)
            {
                _openCalls++;
                _lastUsed = _time.GetTimestamp();
            }
        }

        public void CallEnded()
        {
            lock (_lock)
            {
                _openCalls--;
                _lastUsed = _time.GetTimestamp();
            }
        }
    }

    /// <summary>A pooled channel lent to one directory call; disposing it returns it.</summary>
    internal sealed class BorrowedChannel : IDisposable
    {
        private PooledPeer? _peer;

        internal BorrowedChannel(PooledPeer peer)
        {
            _peer = peer;
            Client = peer.Client;
        }

        public Protocol.V1.Link.LinkClient Client { get; }

        public void Dispose() => Interlocked.Exchange(ref _peer, null)?.Return();
    }

    /// <summary>Counts a channel's open streaming calls: started when made, ended when disposed.</summary>
    private sealed class CallCounter(PooledPeer peer) : Interceptor
    {
        public override AsyncDuplexStreamingCall<TRequest, TResponse> AsyncDuplexStreamingCall<TRequest, TResponse>(
            ClientInterceptorContext<TRequest, TResponse> context, AsyncDuplexStreamingCallContinuation<TRequest, TResponse> continuation)
        {
            var call = continuation(context);
            peer.CallStarted();
            var ended = 0;
            return new AsyncDuplexStreamingCall<TRequest, TResponse>(call.RequestStream, call.ResponseStream, call.ResponseHeadersAsync,
                call.GetStatus, call.GetTrailers, () =>
                {
                    if (Interlocked.Exchange(ref ended, 1) == 0)
                    {
                        peer.CallEnded();
                    }

                    call.Dispose();
                });
        }
    }
}

/// <summary>
/// The address a directory call's connection reached, set by the connect callback, and over TLS
/// the node id the server's certificate proved.
/// </summary>
internal sealed class DialedAddress
{
    private IPAddress? _address;
    private StrongBox<NodeId>? _node;

    /// <summary>The remote address of the last connection made, or null before one was made.</summary>
    public IPAddress? Address => Volatile.Read(ref _address);

    /// <summary>The node id the last TLS connection's certificate proved, or null (cleartext, or none yet).</summary>
    public NodeId? Node => Volatile.Read(ref _node)?.Value;

    internal void Set(IPAddress address) => Volatile.Write(ref _address, PeerAddress.Normalize(address));

    internal void SetNode(NodeId id) => Volatile.Write(ref _node, new StrongBox<NodeId>(id));
}

/// <summary>A pooled channel's key: a node is reached at an endpoint only if it proves that id there.</summary>
internal readonly record struct PeerKey(NodeId Id, Uri Endpoint);
