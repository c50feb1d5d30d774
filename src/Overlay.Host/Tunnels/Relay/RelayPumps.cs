using System.Diagnostics;
using System.Globalization;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Overlay.Cells;
using Overlay.Errors;
using Overlay.Host.Admission;
using Overlay.Host.Directory;
using Overlay.Host.Link;
using Overlay.Host.Options;
using Overlay.Host.Telemetry;
using Overlay.Onion;
using Overlay.Protocol.V1;

namespace Overlay.Host.Tunnels;

/// <summary>The two directions of a relayed hop. Each pump is the only writer of its outgoing stream.</summary>
internal sealed class RelayPumps(
    RelayCellCodec codec,
    int cellSize,
    int maxCellsPerMessage,
    IAsyncStreamReader<LinkMessage> requests,
    IServerStreamWriter<LinkMessage> responses,
    AsyncDuplexStreamingCall<LinkMessage, LinkMessage> call,
    CancellationTokenSource tunnel,
    CancellationToken upstream,
    IdleTimer idle,
    RelayFailure failure,
    OverlayMetrics metrics,
    Activity? hop,
    Activity? connect,
    PhaseTracker phase)
{
    /// <summary>The predecessor ended its request normally and it was passed on.</summary>
    public bool ForwardCompleted { get; private set; }

    /// <summary>The successor ended its reply normally and it was passed on.</summary>
    public bool BackwardCompleted { get; private set; }

    public async Task ForwardAsync(FirstMessage first)
    {
        var message = first.Take();
        // The next hop's header leaves with the first message this hop writes.
        var header = message.Header;
        var framer = new CellFramer(maxCellsPerMessage * cellSize);
        var token = tunnel.Token;
        using var span = TunnelTracing.StartPhase("overlay.relay.forward", hop);
        long cells = 0, bytes = 0;
        try
        {
            while (true)
            {
                cells += message.Cells.Length / cellSize;
                bytes += message.Cells.Length;
                var peeled = Peel(message);
                if (peeled != TunnelErrorKind.None)
                {
                    Fail(peeled, nextHop: false, null);
                    return;
                }

                framer.Add(message.Cells.Memory);
                // The gRPC reader keeps its last message as Current while it waits for the next: let go of
                // it here (the framer holds the cells until written), or an idle tunnel holds them at every hop.
                message.Header = ByteString.Empty;
                message.Cells = ByteString.Empty;

                // Full batches leave at once; a partial one waits only while more input is already here.
                if (await WriteForwardAsync(framer, header, flush: false, token) is not { } unsent)
                {
                    return;
                }

                header = unsent;
                var reading = requests.MoveNext(token);
                if (!reading.IsCompleted)
                {
                    if (await WriteForwardAsync(framer, header, flush: true, token) is not { } stillUnsent)
                    {
                        return;
                    }

                    header = stillUnsent;
                }

                bool more;
                try
                {
                    more = await reading;
                }
                catch (RpcException exception) when (!token.IsCancellationRequested && exception.StatusCode != StatusCode.Cancelled)
                {
                    // The predecessor sent something the server could not take (oversized, cut, bad encoding).
                    Fail(exception.StatusCode == StatusCode.ResourceExhausted ? TunnelErrorKind.LimitExceeded : TunnelErrorKind.ProtocolViolation, nextHop: false, exception);
                    return;
                }
                catch (Exception exception) when (!token.IsCancellationRequested && exception is IOException or InvalidOperationException or OperationCanceledException or RpcException)
                {
                    failure.SetUpstreamLost(exception);
                    tunnel.Cancel();
                    return;
                }

                if (!more)
                {
                    if (await WriteForwardAsync(framer, header, flush: true, token) is null)
                    {
                        return;
                    }

                    break;
                }

                idle.Touch();
                message = requests.Current;
                if (message.Header.Length != 0)
                {
                    Fail(TunnelErrorKind.ProtocolViolation, nextHop: false, null);
                    return;
                }
            }

            await call.RequestStream.CompleteAsync();
            phase.Current = "request.end";
            ForwardCompleted = true;
        }
        catch (Exception exception) when (IsTeardown(exception, token))
        {
            // The other pump, the deadline or the predecessor ended the tunnel and recorded why; this
            // pump's own exception is a consequence, kept on its span.
            span?.AddEvent(TeardownEvent(exception));
        }
        catch (Exception exception) when (!token.IsCancellationRequested)
        {
            // Anything else is a bug: end the tunnel with a typed Internal error, logged with the exception.
            Fail(TunnelErrorKind.Internal, nextHop: false, exception);
        }
        finally
        {
            connect?.Dispose();
            span?.SetTag("overlay.cells", cells);
            span?.SetTag("overlay.bytes", bytes);
        }
    }

    // Writes what the framer releases (the next hop's header with the first message); returns the header
    // still to send (empty once sent), or null when the write failed and the tunnel is over.
    private async Task<ByteString?> WriteForwardAsync(CellFramer framer, ByteString header, bool flush, CancellationToken token)
    {
        while (framer.TryTake(flush, out var batch) || (flush && !header.IsEmpty))
        {
            try
            {
                // A fresh message with only the known fields: protobuf keeps unknown fields, and
                // forwarding them would let a predecessor tag the tunnel for a later hop.
                await call.RequestStream.WriteAsync(new LinkMessage { Header = header, Cells = UnsafeByteOperations.UnsafeWrap(batch.Cells) }, token);
            }
            catch (Exception exception) when (!token.IsCancellationRequested && exception is RpcException or IOException or InvalidOperationException)
            {
                // The first write is the connection: failing there means the next hop could not be reached.
                var transport = !header.IsEmpty ? TunnelErrorKind.NextHopUnreachable : TunnelErrorKind.LinkLost;
                Fail(exception is RpcException rpc ? LinkErrors.ReasonOf(rpc, transport) : transport, nextHop: true, exception);
                return null;
            }

            // Serialised by the time the write completed.
            batch.Release();
            if (!header.IsEmpty)
            {
                header = ByteString.Empty;
                connect?.Dispose();
                phase.Current = "piping";
            }
        }

        return header;
    }

    public async Task BackwardAsync()
    {
        var token = tunnel.Token;
        var framer = new CellFramer(maxCellsPerMessage * cellSize);
        using var span = TunnelTracing.StartPhase("overlay.relay.backward", hop);
        long cells = 0, bytes = 0;
        try
        {
            var reading = call.ResponseStream.MoveNext(token);
            while (true)
            {
                bool more;
                try
                {
                    more = await reading;
                }
                catch (RpcException exception) when (!token.IsCancellationRequested)
                {
                    var transport = cells == 0 && exception.StatusCode == StatusCode.Unavailable ? TunnelErrorKind.NextHopUnreachable : TunnelErrorKind.LinkLost;
                    Fail(LinkErrors.ReasonOf(exception, transport), nextHop: true, exception);
                    return;
                }

                if (!more)
                {
                    BackwardCompleted = await WriteBackwardAsync(framer, flush: true);
                    return;
                }

                idle.Touch();
                var message = call.ResponseStream.Current;
                var batch = CellBatch.Writable(message.Cells);
                if (message.Header.Length != 0 || !CellBatch.IsWhole(batch.Length, cellSize))
                {
                    Fail(TunnelErrorKind.ProtocolViolation, nextHop: true, null);
                    return;
                }

                codec.ProcessBackwardCells(batch.Span);
                metrics.CellsRelayed(forward: false, batch.Length / cellSize, batch.Length);
                cells += batch.Length / cellSize;
                bytes += batch.Length;
                framer.Add(batch);
                message.Cells = ByteString.Empty; // as in the forward pump: the reader keeps the message

                // As forward: full batches at once, a partial one only while no more input is here.
                if (!await WriteBackwardAsync(framer, flush: false))
                {
                    return;
                }

                reading = call.ResponseStream.MoveNext(token);
                if (!reading.IsCompleted && !await WriteBackwardAsync(framer, flush: true))
                {
                    return;
                }
            }
        }
        catch (Exception exception) when (IsTeardown(exception, token))
        {
            // The other pump, the deadline or the predecessor ended the tunnel and recorded why; this
            // pump's own exception is a consequence, kept on its span.
            span?.AddEvent(TeardownEvent(exception));
        }
        catch (Exception exception) when (!token.IsCancellationRequested)
        {
            // Anything else is a bug: end the tunnel with a typed Internal error, logged with the exception.
            Fail(TunnelErrorKind.Internal, nextHop: false, exception);
        }
        finally
        {
            span?.SetTag("overlay.cells", cells);
            span?.SetTag("overlay.bytes", bytes);
        }
    }

    // Writes what the framer releases upstream; false when the predecessor is gone and the tunnel is over.
    private async Task<bool> WriteBackwardAsync(CellFramer framer, bool flush)
    {
        while (framer.TryTake(flush, out var batch))
        {
            try
            {
                await responses.WriteAsync(new LinkMessage { Cells = UnsafeByteOperations.UnsafeWrap(batch.Cells) }, upstream);
            }
            catch (Exception exception) when (exception is IOException or InvalidOperationException || (exception is OperationCanceledException && !upstream.IsCancellationRequested))
            {
                failure.SetUpstreamLost(exception);
                tunnel.Cancel();
                return false;
            }

            batch.Release();
        }

        return true;
    }

    // Once the tunnel is cancelled, pending calls fail in every way the stack has: all consequences.
    private static bool IsTeardown(Exception exception, CancellationToken token) =>
        (token.IsCancellationRequested && exception is OperationCanceledException or RpcException or IOException or InvalidOperationException)
        || exception is RpcException { StatusCode: StatusCode.Cancelled };

    private static ActivityEvent TeardownEvent(Exception exception) =>
        new("overlay.pump.teardown", tags: new ActivityTagsCollection { ["exception.type"] = exception.GetType().Name });

    private TunnelErrorKind Peel(LinkMessage message)
    {
        if (message.Cells.Length == 0)
        {
            return message.Header.Length != 0 ? TunnelErrorKind.None : TunnelErrorKind.ProtocolViolation;
        }

        var cells = CellBatch.Writable(message.Cells);
        if (!CellBatch.IsWhole(cells.Length, cellSize))
        {
            return TunnelErrorKind.ProtocolViolation;
        }

        var result = codec.ProcessForwardCells(cells.Span);
        if (result != TunnelErrorKind.None)
        {
            return result;
        }

        metrics.CellsRelayed(forward: true, cells.Length / cellSize, cells.Length);
        return TunnelErrorKind.None;
    }

    private void Fail(TunnelErrorKind kind, bool nextHop, Exception? exception)
    {
        failure.Set(kind, nextHop, exception);
        tunnel.Cancel();
    }
}
