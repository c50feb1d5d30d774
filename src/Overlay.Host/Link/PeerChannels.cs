using System.Collections.Concurrent;
using System.Net;
using Grpc.Net.Client;
using Microsoft.Extensions.Options;
using Overlay.Host.Options;
using Overlay.Protocol.V1;

namespace Overlay.Host.Link;

/// <summary>
/// gRPC channels to peers. Tunnel hops share one pooled channel per peer (HTTP/2 multiplexing,
/// another connection when one is full); directory calls use a short-lived channel each, so a
/// node keeps connections only to the peers its tunnels use, never a full mesh.
/// </summary>
internal sealed class PeerChannels : IDisposable
{
    private readonly ConcurrentDictionary<Uri, Lazy<(GrpcChannel Channel, Protocol.V1.Link.LinkClient Client)>> _pooled = new();
    private readonly LinkEndpointOptions _options;
    private readonly int _maxMessageBytes;
    private int _disposed;

    public PeerChannels(IOptions<OverlayOptions> options)
    {
        _options = options.Value.Link;
        _maxMessageBytes = options.Value.Link.MaxMessageBytes;
    }

    /// <summary>The pooled client for tunnel hops to <paramref name="endpoint"/>.</summary>
    public Protocol.V1.Link.LinkClient Client(Uri endpoint)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        return _pooled.GetOrAdd(endpoint, e => new Lazy<(GrpcChannel, Protocol.V1.Link.LinkClient)>(() =>
        {
            var channel = CreateChannel(e, pooledIdleTimeout: TimeSpan.FromMinutes(1));
            return (channel, new Protocol.V1.Link.LinkClient(channel));
        })).Value.Client;
    }

    /// <summary>A channel for one directory exchange; dispose it when done (its connection closes).</summary>
    public GrpcChannel CreateTransient(Uri endpoint) => CreateChannel(endpoint, pooledIdleTimeout: TimeSpan.FromSeconds(5));

    private GrpcChannel CreateChannel(Uri endpoint, TimeSpan pooledIdleTimeout)
    {
        var handler = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = true,
            InitialHttp2StreamWindowSize = _options.StreamWindowBytes,
            KeepAlivePingDelay = _options.KeepAlivePingDelay,
            KeepAlivePingTimeout = _options.KeepAlivePingTimeout,
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests,
            ConnectTimeout = _options.ConnectTimeout,
            PooledConnectionIdleTimeout = pooledIdleTimeout,
            AutomaticDecompression = DecompressionMethods.None,
            UseProxy = false,
            // No traceparent, tracestate, baggage or Request-Id on any link request (DESIGN.md guarantee 10).
            ActivityHeadersPropagator = null,
        };
        return GrpcChannel.ForAddress(endpoint, new GrpcChannelOptions
        {
            HttpHandler = handler,
            DisposeHttpClient = true,
            MaxReceiveMessageSize = _maxMessageBytes,
            MaxSendMessageSize = _maxMessageBytes,
        });
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        foreach (var entry in _pooled.Values)
        {
            if (entry.IsValueCreated)
            {
                entry.Value.Channel.Dispose();
            }
        }

        _pooled.Clear();
    }
}
