using System.Runtime.CompilerServices;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Options;
using Overlay.Client.Internal;
using Overlay.Protocol.Control.V1;

namespace Overlay.Client;

/// <summary>
/// An application's or operator's handle on one node's control API: tunnels as streams, one-way
/// sends, listening, pings, peers and events. Get it from dependency injection after
/// <see cref="OverlayClientServiceCollectionExtensions.AddOverlayClient"/>. Every failure is an
/// <see cref="OverlayException"/>; cancelling a token throws <see cref="OperationCanceledException"/>.
/// </summary>
public sealed partial class OverlayClient(Protocol.Control.V1.Control.ControlClient api, IOptions<OverlayClientOptions> options)
{
    private readonly OverlayClientOptions _options = options.Value;

    /// <summary>The generated gRPC client underneath, for calls this class does not wrap.</summary>
    public Protocol.Control.V1.Control.ControlClient Api { get; } = api;

    /// <summary>The node's control endpoint.</summary>
    public Uri Endpoint => _options.Endpoint;

    /// <summary>What the node is: identity, endpoints, onion key, uptime, counts, and the caller's role.</summary>
    public Task<NodeInfo> GetInfoAsync(CancellationToken cancellationToken = default) =>
        Unary(Api.GetInfoAsync(new GetInfoRequest(), cancellationToken: cancellationToken));

    /// <summary>The node's counters.</summary>
    public Task<Stats> GetStatsAsync(CancellationToken cancellationToken = default) =>
        Unary(Api.GetStatsAsync(new GetStatsRequest(), cancellationToken: cancellationToken));

    /// <summary>The peers the node knows, and the ones it refuses until it restarts.</summary>
    public Task<ListPeersResponse> ListPeersAsync(CancellationToken cancellationToken = default) =>
        Unary(Api.ListPeersAsync(new ListPeersRequest(), cancellationToken: cancellationToken));

    /// <summary>Adds the node at a link endpoint, once it proves its identity (operator only).</summary>
    public Task<Peer> AddPeerAsync(string linkEndpoint, CancellationToken cancellationToken = default) =>
        Unary(Api.AddPeerAsync(new AddPeerRequest { Endpoint = linkEndpoint }, cancellationToken: cancellationToken));

    /// <summary>Forgets a peer; with <paramref name="ban"/> refuses it until the node restarts (operator only).</summary>
    public Task<RemovePeerResponse> RemovePeerAsync(string nodeId, bool ban = false, CancellationToken cancellationToken = default) =>
        Unary(Api.RemovePeerAsync(new RemovePeerRequest { NodeId = nodeId, Ban = ban }, cancellationToken: cancellationToken));

    /// <summary>Peer status changes as they happen (the known peers first with <paramref name="includeCurrent"/>).</summary>
    public IAsyncEnumerable<PeerChange> WatchPeersAsync(bool includeCurrent = false, CancellationToken cancellationToken = default) =>
        Stream(Api.WatchPeers(new WatchPeersRequest { IncludeCurrent = includeCurrent }, cancellationToken: cancellationToken), cancellationToken);

    /// <summary>Node events as they happen, only of <paramref name="types"/> if given.</summary>
    public IAsyncEnumerable<NodeEvent> WatchEventsAsync(IEnumerable<EventType>? types = null, CancellationToken cancellationToken = default)
    {
        var request = new WatchEventsRequest();
        request.EventTypes.AddRange(types ?? []);
        return Stream(Api.WatchEvents(request, cancellationToken: cancellationToken), cancellationToken);
    }

    /// <summary>Round trips through relays: one result per attempt, with its time or its typed failure.</summary>
    public IAsyncEnumerable<PingAttempt> PingAsync(PingRequest request, CancellationToken cancellationToken = default) =>
        Stream(Api.Ping(request, cancellationToken: cancellationToken), cancellationToken);

    /// <summary>The tunnels open through this node's control API that the caller may see.</summary>
    public Task<ListTunnelsResponse> ListTunnelsAsync(CancellationToken cancellationToken = default) =>
        Unary(Api.ListTunnelsAsync(new ListTunnelsRequest(), cancellationToken: cancellationToken));

    /// <summary>Closes an open tunnel; its call ends with Cancelled.</summary>
    public Task CloseTunnelAsync(string tunnelId, CancellationToken cancellationToken = default) =>
        Unary(Api.CloseTunnelAsync(new CloseTunnelRequest { TunnelId = tunnelId }, cancellationToken: cancellationToken));

    /// <summary>Rotates the node's onion key now, or says when it will (operator only).</summary>
    public Task<RotateKeysResponse> RotateKeysAsync(CancellationToken cancellationToken = default) =>
        Unary(Api.RotateKeysAsync(new RotateKeysRequest(), cancellationToken: cancellationToken));

    /// <summary>
    /// Opens a duplex tunnel and returns it once the node has built it. <paramref name="cancellationToken"/>
    /// covers the tunnel's whole life: cancelling it later ends the tunnel.
    /// </summary>
    public async Task<TunnelStream> OpenTunnelAsync(OverlayTarget target, CancellationToken cancellationToken = default)
    {
        var open = new OpenTunnelRequest { Open = target.ToWire() };
        var call = Api.OpenTunnel(cancellationToken: cancellationToken);
        try
        {
            await call.RequestStream.WriteAsync(open, cancellationToken);
            if (!await call.ResponseStream.MoveNext(cancellationToken) || call.ResponseStream.Current.Opened is not { } opened)
            {
                throw new IOException("the node ended the tunnel call without opening the tunnel");
            }

            var tunnel = new TunnelCall<OpenTunnelRequest, OpenTunnelResponse>(call,
                data => new OpenTunnelRequest { Data = data }, () => new OpenTunnelRequest { End = true }, r => (r.Data, r.End));
            return new TunnelStream(tunnel, Endpoint, _options.TunnelWriteChunkBytes, opened.TunnelId, TunnelMode.Duplex, [.. opened.Route]);
        }
        catch (RpcException exception)
        {
            call.Dispose();
            throw OverlayErrors.From(exception, Endpoint);
        }
        catch
        {
            call.Dispose();
            throw;
        }
    }

    /// <summary>Sends <paramref name="content"/> one way; completes on the destination's receipt.</summary>
    public Task<SendResponse> SendAsync(OverlayTarget target, ReadOnlyMemory<byte> content, CancellationToken cancellationToken = default) =>
        SendAsync(target, async (write, token) => await write(content, token), cancellationToken);

    /// <summary>Sends everything <paramref name="content"/> holds one way; completes on the destination's receipt.</summary>
    public Task<SendResponse> SendAsync(OverlayTarget target, Stream content, CancellationToken cancellationToken = default) =>
        SendAsync(target, async (write, token) =>
        {
            var buffer = new byte[_options.TunnelWriteChunkBytes];
            int read;
            while ((read = await content.ReadAsync(buffer, token)) > 0)
            {
                await write(buffer.AsMemory(0, read), token);
            }
        }, cancellationToken);

    private async Task<SendResponse> SendAsync(OverlayTarget target, Func<Func<ReadOnlyMemory<byte>, CancellationToken, Task>, CancellationToken, Task> produce,
        CancellationToken cancellationToken, ReplyOverOtherRoute? reply = null)
    {
        using var call = Api.Send(cancellationToken: cancellationToken);
        try
        {
            await call.RequestStream.WriteAsync(new SendRequest { Target = target.ToWire(), Reply = reply }, cancellationToken);
            await produce(async (data, token) =>
            {
                for (var offset = 0; offset < data.Length; offset += _options.TunnelWriteChunkBytes)
                {
                    var part = data.Slice(offset, Math.Min(_options.TunnelWriteChunkBytes, data.Length - offset));
                    // Serialized before WriteAsync completes: the caller's buffer is not kept.
                    await call.RequestStream.WriteAsync(new SendRequest { Data = UnsafeByteOperations.UnsafeWrap(part) }, token);
                }
            }, cancellationToken);
            await call.RequestStream.CompleteAsync();
            return await call.ResponseAsync;
        }
        catch (RpcException exception)
        {
            throw OverlayErrors.From(exception, Endpoint);
        }
    }

    /// <summary>
    /// Registers to receive the tunnels that end at this node; returns once the registration is in
    /// place. Enumerate the listener for accepted tunnels, or its <see cref="TunnelListener.OffersAsync"/>
    /// to accept or refuse each. Disposing it (or cancelling the token) stops listening.
    /// </summary>
    /// <param name="service">The named service to listen for (the operator must have made the caller its owner); null for the tunnels that name none.</param>
    /// <param name="cancellationToken">Ends the registration.</param>
    public async Task<TunnelListener> ListenAsync(string? service = null, CancellationToken cancellationToken = default)
    {
        var call = Api.Listen(new ListenRequest { Service = service ?? "" }, cancellationToken: cancellationToken);
        try
        {
            var headers = await call.ResponseHeadersAsync;
            if (headers.GetValue(OverlayErrors.ListeningHeader) is null)
            {
                // Refused (not the owner, too many listeners): the status follows the headers at once.
                await call.ResponseStream.MoveNext(cancellationToken);
                throw new IOException("the node ended the listen call without registering it");
            }

            return new TunnelListener(this, call);
        }
        catch (RpcException exception)
        {
            call.Dispose();
            throw OverlayErrors.From(exception, Endpoint);
        }
    }

    /// <summary>Takes an offered tunnel: its request streams in, the reply streams out.</summary>
    public Task<TunnelStream> AcceptAsync(IncomingTunnelOffer offer, CancellationToken cancellationToken = default) =>
        AcceptAsync(offer.TunnelId, offer.Service.Length == 0 ? null : offer.Service, cancellationToken);

    /// <summary>Takes an offered tunnel by its id: its request streams in, the reply streams out.</summary>
    public Task<TunnelStream> AcceptAsync(string tunnelId, CancellationToken cancellationToken = default) => AcceptAsync(tunnelId, null, cancellationToken);

    private async Task<TunnelStream> AcceptAsync(string tunnelId, string? service, CancellationToken cancellationToken)
    {
        var call = Api.Accept(cancellationToken: cancellationToken);
        try
        {
            await call.RequestStream.WriteAsync(new AcceptRequest { TunnelId = tunnelId }, cancellationToken);
            if (!await call.ResponseStream.MoveNext(cancellationToken))
            {
                throw new IOException($"the node ended the accept call of {tunnelId} without handing over the tunnel");
            }

            var mode = call.ResponseStream.Current.Mode;
            var replyBlock = call.ResponseStream.Current.ReplyBlock.Memory;
            var tunnel = new TunnelCall<AcceptRequest, AcceptResponse>(call,
                data => new AcceptRequest { Data = data }, () => new AcceptRequest { End = true }, r => (r.Data, r.End));
            return new TunnelStream(tunnel, Endpoint, _options.TunnelWriteChunkBytes, tunnelId, mode, []) { Service = service, ReplyBlock = replyBlock };
        }
        catch (RpcException exception)
        {
            call.Dispose();
            throw OverlayErrors.From(exception, Endpoint);
        }
        catch
        {
            call.Dispose();
            throw;
        }
    }

    /// <summary>Refuses an offered tunnel: its origin gets <c>destination_refused</c>.</summary>
    public async Task RefuseAsync(string tunnelId, CancellationToken cancellationToken = default)
    {
        using var call = Api.Accept(cancellationToken: cancellationToken);
        try
        {
            await call.RequestStream.WriteAsync(new AcceptRequest { TunnelId = tunnelId, Refuse = true }, cancellationToken);
            await call.RequestStream.CompleteAsync();
            if (await call.ResponseStream.MoveNext(cancellationToken))
            {
                throw new IOException($"the node sent tunnel data for the refused tunnel {tunnelId}");
            }
        }
        catch (RpcException exception)
        {
            throw OverlayErrors.From(exception, Endpoint);
        }
    }

    internal async IAsyncEnumerable<T> Stream<T>(AsyncServerStreamingCall<T> call, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using (call)
        {
            while (true)
            {
                bool more;
                try
                {
                    more = await call.ResponseStream.MoveNext(cancellationToken);
                }
                catch (RpcException exception)
                {
                    throw OverlayErrors.From(exception, Endpoint);
                }

                if (!more)
                {
                    yield break;
                }

                yield return call.ResponseStream.Current;
            }
        }
    }

    private async Task<T> Unary<T>(AsyncUnaryCall<T> call)
    {
        using (call)
        {
            try
            {
                return await call.ResponseAsync;
            }
            catch (RpcException exception)
            {
                throw OverlayErrors.From(exception, Endpoint);
            }
        }
    }
}
