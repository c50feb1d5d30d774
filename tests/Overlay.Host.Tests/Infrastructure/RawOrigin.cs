using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Overlay.Cells;
using Overlay.Errors;
using Overlay.Host.Link;
using Overlay.Identity;
using Overlay.Onion;
using Overlay.Protocol;
using Overlay.Protocol.V1;

namespace Overlay.Host.Tests.Infrastructure;

/// <summary>A header built for a route, with the origin's cell codec for it.</summary>
internal sealed class RawTunnelKeys(byte[] header, OriginCellCodec codec) : IDisposable
{
    public byte[] Header { get; } = header;

    public OriginCellCodec Codec { get; } = codec;

    public void Dispose() => Codec.Dispose();
}

/// <summary>
/// An origin built directly on the protocol core and a plain gRPC client, for what the node's
/// <see cref="Tunnels.TunnelClient"/> cannot be made to do: build a header from a descriptor the
/// node would no longer use (an old onion-key epoch), or send the same header twice.
/// </summary>
internal static class RawOrigin
{
    /// <summary>Builds a header for <paramref name="route"/> (relays, then the destination) as published in these descriptors.</summary>
    public static RawTunnelKeys Build(NetworkParameters network, IReadOnlyList<NodeDescriptor> route, DeadlineClass deadline = DeadlineClass.Seconds30, string? service = null)
    {
        var builder = new OnionHeaderBuilder(network);
        var header = new byte[builder.HeaderSize];
        var keys = builder.Build([.. route.Select(d => d.ToRouteHop())], TunnelMode.Duplex, deadline, header, service: service);
        return new RawTunnelKeys(header, new OriginCellCodec(network, keys));
    }

    /// <summary>
    /// Sends the header and <paramref name="payload"/> (ending with the end marker) to
    /// <paramref name="firstHop"/> and reads the whole reply. Failures come back as the node's
    /// origin reports them: a <see cref="TunnelException"/> naming the hop. <paramref name="rewrite"/> may
    /// change each message on its way out (what a misbehaving origin or relay could send).
    /// </summary>
    public static async Task<byte[]> RoundTripAsync(Uri firstHop, RawTunnelKeys keys, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken,
        Func<LinkMessage, LinkMessage>? rewrite = null)
    {
        rewrite ??= static message => message;
        var codec = keys.Codec;
        var cellSize = codec.Layout.CellSize;
        using var channel = GrpcChannel.ForAddress(firstHop, new GrpcChannelOptions
        {
            HttpHandler = TestLinkTls.Handler(firstHop),
            DisposeHttpClient = true,
        });
        using var call = new Protocol.V1.Link.LinkClient(channel).Relay(cancellationToken: cancellationToken);
        try
        {
            await call.RequestStream.WriteAsync(rewrite(new LinkMessage { Header = ByteString.CopyFrom(keys.Header) }), cancellationToken);
            var capacity = codec.ForwardPayloadCapacity;
            var cells = Math.Max(1, (payload.Length + capacity - 1) / capacity);
            for (var first = 0; first < cells; first += 8)
            {
                var count = Math.Min(8, cells - first);
                var batch = new byte[count * cellSize];
                for (var i = 0; i < count; i++)
                {
                    var index = first + i;
                    var chunk = payload.Slice(Math.Min(payload.Length, index * capacity));
                    chunk = chunk[..Math.Min(capacity, chunk.Length)];
                    codec.SealForward(index == cells - 1 ? CellType.End : CellType.Data, chunk.Span, batch.AsSpan(i * cellSize, cellSize));
                }

                await call.RequestStream.WriteAsync(rewrite(new LinkMessage { Cells = ByteString.CopyFrom(batch) }), cancellationToken);
            }

            await call.RequestStream.CompleteAsync();
        }
        catch (Exception exception) when (exception is RpcException or InvalidOperationException or IOException)
        {
            // The hop ended the call; its reason is in the response stream's status, read below.
        }

        using var reply = new MemoryStream();
        var plaintext = new byte[codec.Layout.PlaintextBufferSize];
        try
        {
            while (await call.ResponseStream.MoveNext(cancellationToken))
            {
                var received = call.ResponseStream.Current.Cells.ToByteArray();
                for (var offset = 0; offset < received.Length; offset += cellSize)
                {
                    var opened = codec.OpenBackward(received.AsSpan(offset, cellSize), plaintext);
                    if (opened.IsError)
                    {
                        throw new TunnelException(opened.Error, opened.Hop);
                    }

                    reply.Write(plaintext, OpenedCell.PayloadOffset, opened.PayloadLength);
                    // A one-way tunnel (a reply over a reply block) ends with the destination's receipt.
                    if (opened.Type is CellType.End or CellType.Receipt)
                    {
                        return reply.ToArray();
                    }
                }
            }
        }
        catch (RpcException exception) when (!cancellationToken.IsCancellationRequested)
        {
            var kind = LinkErrors.ReasonOf(exception, exception.StatusCode == StatusCode.Unavailable ? TunnelErrorKind.NextHopUnreachable : TunnelErrorKind.LinkLost);
            throw new TunnelException(kind, 1, $"hop 1 ended the call: {exception.Status}", exception);
        }

        throw new TunnelException(TunnelErrorKind.Truncated, 0, "the reply ended without its end marker");
    }

    /// <summary>
    /// Sends <paramref name="cells"/> cells of <paramref name="payload"/> bytes each, one cell per link
    /// message (the first with the header, the last with the end marker), as fast as the link takes them:
    /// a predecessor re-splitting its messages into a pattern. Returns once every message was written.
    /// </summary>
    public static async Task<AsyncDuplexStreamingCall<LinkMessage, LinkMessage>> SendOneCellPerMessageAsync(GrpcChannel channel, RawTunnelKeys keys, int cells, int payload,
        CancellationToken cancellationToken)
    {
        var codec = keys.Codec;
        var cellSize = codec.Layout.CellSize;
        var call = new Protocol.V1.Link.LinkClient(channel).Relay(cancellationToken: cancellationToken);
        for (var i = 0; i < cells; i++)
        {
            var cell = new byte[cellSize];
            codec.SealForward(i == cells - 1 ? CellType.End : CellType.Data, new byte[payload], cell);
            var message = new LinkMessage { Cells = ByteString.CopyFrom(cell) };
            if (i == 0)
            {
                message.Header = ByteString.CopyFrom(keys.Header);
            }

            await call.RequestStream.WriteAsync(message, cancellationToken);
        }

        await call.RequestStream.CompleteAsync();
        return call;
    }

    /// <summary>Reads a reply to its end marker (failures as <see cref="TunnelException"/>), returning its length.</summary>
    public static async Task<long> ReadReplyAsync(AsyncDuplexStreamingCall<LinkMessage, LinkMessage> call, RawTunnelKeys keys, CancellationToken cancellationToken)
    {
        var cellSize = keys.Codec.Layout.CellSize;
        var plaintext = new byte[keys.Codec.Layout.PlaintextBufferSize];
        long length = 0;
        while (await call.ResponseStream.MoveNext(cancellationToken))
        {
            var received = call.ResponseStream.Current.Cells.ToByteArray();
            for (var offset = 0; offset < received.Length; offset += cellSize)
            {
                var opened = keys.Codec.OpenBackward(received.AsSpan(offset, cellSize), plaintext);
                if (opened.IsError)
                {
                    throw new TunnelException(opened.Error, opened.Hop);
                }

                length += opened.PayloadLength;
                if (opened.Type == CellType.End)
                {
                    return length;
                }
            }
        }

        throw new TunnelException(TunnelErrorKind.Truncated, 0, "the reply ended without its end marker");
    }

    /// <summary>
    /// Sends the header alone and keeps the request open without sending a cell, as an origin that
    /// walked away would; returns the typed failure the route reports back in an error cell.
    /// </summary>
    public static async Task<TunnelException> HeaderOnlyAsync(Uri firstHop, RawTunnelKeys keys, CancellationToken cancellationToken)
    {
        using var channel = GrpcChannel.ForAddress(firstHop, new GrpcChannelOptions
        {
            HttpHandler = TestLinkTls.Handler(firstHop),
            DisposeHttpClient = true,
        });
        using var call = new Protocol.V1.Link.LinkClient(channel).Relay(cancellationToken: cancellationToken);
        await call.RequestStream.WriteAsync(new LinkMessage { Header = ByteString.CopyFrom(keys.Header) }, cancellationToken);
        var cellSize = keys.Codec.Layout.CellSize;
        var plaintext = new byte[keys.Codec.Layout.PlaintextBufferSize];
        while (await call.ResponseStream.MoveNext(cancellationToken))
        {
            var received = call.ResponseStream.Current.Cells.ToByteArray();
            for (var offset = 0; offset < received.Length; offset += cellSize)
            {
                var opened = keys.Codec.OpenBackward(received.AsSpan(offset, cellSize), plaintext);
                if (opened.IsError)
                {
                    return new TunnelException(opened.Error, opened.Hop, opened.ReportedBy, $"hop {opened.Hop}: {opened.Error.ToTag()}");
                }
            }
        }

        return new TunnelException(TunnelErrorKind.Truncated, 0, "the route ended the tunnel without a reason");
    }
}
