using System.Runtime.CompilerServices;
using Grpc.Core;
using Overlay.Protocol.Control.V1;

namespace Overlay.Client;

/// <summary>
/// A registration to receive the tunnels that end at the node. Enumerate it for accepted tunnels
/// (each its own <see cref="TunnelStream"/>; serve them side by side, an offer not accepted within
/// the node's accept timeout, or while the caller holds its
/// MaxTunnelsPerClient, is refused), or enumerate <see cref="OffersAsync"/> to decide per
/// offer. Lasts until disposed.
/// </summary>
public sealed class TunnelListener : IAsyncEnumerable<TunnelStream>, IDisposable
{
    private readonly OverlayClient _client;
    private readonly AsyncServerStreamingCall<ListenResponse> _call;

    internal TunnelListener(OverlayClient client, AsyncServerStreamingCall<ListenResponse> call)
    {
        _client = client;
        _call = call;
    }

    /// <summary>The offers as they arrive; take each with <see cref="OverlayClient.AcceptAsync(IncomingTunnelOffer, CancellationToken)"/> or <see cref="OverlayClient.RefuseAsync"/>.</summary>
    public async IAsyncEnumerable<IncomingTunnelOffer> OffersAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        while (true)
        {
            bool more;
            try
            {
                more = await _call.ResponseStream.MoveNext(cancellationToken);
            }
            catch (RpcException exception)
            {
                throw Internal.OverlayErrors.From(exception, _client.Endpoint);
            }

            if (!more)
            {
                yield break;
            }

            yield return _call.ResponseStream.Current.Offer;
        }
    }

    /// <summary>Accepts every offer in turn.</summary>
    public async IAsyncEnumerator<TunnelStream> GetAsyncEnumerator(CancellationToken cancellationToken = default)
    {
        await foreach (var offer in OffersAsync(cancellationToken))
        {
            var tunnel = await TryAcceptAsync(offer, cancellationToken);
            if (tunnel is not null)
            {
                yield return tunnel;
            }
        }
    }

    private async Task<TunnelStream?> TryAcceptAsync(IncomingTunnelOffer offer, CancellationToken cancellationToken)
    {
        try
        {
            return await _client.AcceptAsync(offer, cancellationToken);
        }
        catch (OverlayNotFoundException)
        {
            // It waited past the node's accept timeout, or its origin gave up: the origin has its
            // answer (destination_refused) already; the next offer is unaffected.
            return null;
        }
        catch (OverlayLimitException)
        {
            // The caller holds its MaxTunnelsPerClient already: the node refused this offer (its
            // origin heard destination_refused); the next one is taken once a tunnel has ended.
            return null;
        }
    }

    /// <summary>Stops listening; offers not yet taken are refused.</summary>
    public void Dispose() => _call.Dispose();
}
