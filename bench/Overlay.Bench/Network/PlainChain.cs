using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.Options;
using Overlay.Bench.Network.Chain;
using Overlay.Host.Link.Tls;
using Overlay.Host.Options;

namespace Overlay.Bench.Network;

/// <summary>
/// Client channels for the plain chain, one pooled channel per peer and node, built with exactly
/// the <see cref="SocketsHttpHandler"/> settings the node's own peer channels use (values read
/// from the node's <see cref="LinkEndpointOptions"/>): fixed stream window, keep-alive pings,
/// several HTTP/2 connections when one is full, no trace headers; over TLS (an https link URL) the
/// node's own link certificate, and the peer's checked as the node checks it.
/// </summary>
internal sealed class ChainChannels : IDisposable
{
    private readonly ConcurrentDictionary<Uri, Lazy<(GrpcChannel Channel, Chain.Chain.ChainClient Client)>> _pooled = new();
    private readonly LinkEndpointOptions _link;
    private readonly LinkCertificateIssuer _issuer;
    private readonly LinkPeerVerifier _verifier;

    public ChainChannels(IOptions<OverlayOptions> options, LinkCertificateIssuer issuer, LinkPeerVerifier verifier)
    {
        _link = options.Value.Link;
        _issuer = issuer;
        _verifier = verifier;
    }

    public Chain.Chain.ChainClient Client(Uri endpoint) => _pooled.GetOrAdd(endpoint, e => new(() =>
    {
        var handler = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = true,
            InitialHttp2StreamWindowSize = _link.StreamWindowBytes,
            KeepAlivePingDelay = _link.KeepAlivePingDelay,
            KeepAlivePingTimeout = _link.KeepAlivePingTimeout,
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests,
            ConnectTimeout = _link.ConnectTimeout,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(1),
            AutomaticDecompression = DecompressionMethods.None,
            UseProxy = false,
            ActivityHeadersPropagator = null,
        };
        if (e.Scheme == Uri.UriSchemeHttps)
        {
            // The chain's hops name no node id: any node's valid certificate, the same checks and cost.
            handler.SslOptions = LinkTls.Client(() => _issuer.Current.Certificate, certificate => _verifier.AcceptServer(certificate, e, expected: null, dialed: null));
        }

        var channel = GrpcChannel.ForAddress(e, new GrpcChannelOptions
        {
            HttpHandler = handler,
            DisposeHttpClient = true,
            MaxReceiveMessageSize = _link.MaxMessageBytes,
            MaxSendMessageSize = _link.MaxMessageBytes,
        });
        return (channel, new Chain.Chain.ChainClient(channel));
    })).Value.Client;

    /// <summary>
    /// Opens a call through <paramref name="hops"/> (the first is dialled, the rest travel in the route header).
    /// With <paramref name="sink"/> the last hop discards what it receives and answers one empty message once the request has ended.
    /// </summary>
    public AsyncDuplexStreamingCall<Chunk, Chunk> Open(IReadOnlyList<Uri> hops, CancellationToken cancellationToken, bool sink = false)
    {
        var previous = Activity.Current;
        Activity.Current = null;
        try
        {
            return Client(hops[0]).Pipe(ChainService.RouteHeaders(hops.Skip(1), sink), cancellationToken: cancellationToken);
        }
        finally
        {
            Activity.Current = previous;
        }
    }

    public void Dispose()
    {
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

/// <summary>
/// One hop of the plain chain, served by every benchmark node next to its Link service (same
/// Kestrel, same HTTP/2 limits). A hop with more hops to go dials the next one and runs one pump
/// per direction, each awaiting its write before reading more, as a tunnel relay does, and
/// returns only after both directions have ended; the last hop echoes every message, or with the
/// sink header (one-way bulk) answers one empty message once the request has ended.
/// </summary>
internal sealed class ChainService(ChainChannels channels) : Chain.Chain.ChainBase
{
    private const string RouteHeader = "chain-route";
    private const string SinkHeader = "chain-sink";

    public static Metadata RouteHeaders(IEnumerable<Uri> rest, bool sink = false)
    {
        var route = string.Join(',', rest.Select(u => u.ToString()));
        var headers = route.Length == 0 ? new Metadata() : new Metadata { { RouteHeader, route } };
        if (sink)
        {
            headers.Add(SinkHeader, "1");
        }

        return headers;
    }

    public override async Task Pipe(IAsyncStreamReader<Chunk> requestStream, IServerStreamWriter<Chunk> responseStream, ServerCallContext context)
    {
        Activity.Current = null;
        var token = context.CancellationToken;
        var route = context.RequestHeaders.GetValue(RouteHeader);
        var sink = context.RequestHeaders.GetValue(SinkHeader) is not null;
        if (string.IsNullOrEmpty(route))
        {
            while (await requestStream.MoveNext(token))
            {
                if (!sink)
                {
                    await responseStream.WriteAsync(requestStream.Current, token);
                }
            }

            if (sink)
            {
                await responseStream.WriteAsync(new Chunk(), token);
            }

            return;
        }

        var hops = route.Split(',').Select(h => new Uri(h)).ToArray();
        using var call = channels.Open(hops, token, sink);
        await Task.WhenAll(ForwardAsync(requestStream, call, token), BackwardAsync(call, responseStream, token));
    }

    private static async Task ForwardAsync(IAsyncStreamReader<Chunk> requests, AsyncDuplexStreamingCall<Chunk, Chunk> call, CancellationToken token)
    {
        while (await requests.MoveNext(token))
        {
            await call.RequestStream.WriteAsync(requests.Current, token);
        }

        await call.RequestStream.CompleteAsync();
    }

    private static async Task BackwardAsync(AsyncDuplexStreamingCall<Chunk, Chunk> call, IServerStreamWriter<Chunk> responses, CancellationToken token)
    {
        while (await call.ResponseStream.MoveNext(token))
        {
            await responses.WriteAsync(call.ResponseStream.Current, token);
        }
    }
}
