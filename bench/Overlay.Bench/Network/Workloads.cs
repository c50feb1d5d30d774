using System.Diagnostics;
using System.Security.Cryptography;
using Google.Protobuf;
using Grpc.Core;
using Overlay.Bench.Network.Chain;
using Overlay.Host;
using Overlay.Host.Tunnels;
using Overlay.Identity;

namespace Overlay.Bench.Network;

/// <summary>
/// The traffic of the harness, once over a tunnel and once over the plain chain, shaped the same
/// way: bulk echo with a concurrent writer and reader, one-message round trips, fresh calls.
/// </summary>
internal static class Workloads
{
    /// <summary>Long enough for any phase; tunnels carry it inside their layers as a deadline class.</summary>
    public static readonly TimeSpan Deadline = TimeSpan.FromMinutes(15);

    public static Task<OverlayTunnel> OpenTunnelAsync(OverlayNode origin, IReadOnlyList<NodeId> route, CancellationToken cancellationToken) =>
        origin.Tunnels.OpenAsync(new TunnelRequest { Route = route, Deadline = Deadline }, cancellationToken);

    /// <summary>Streams <paramref name="bytes"/> through an open tunnel and reads the echo; returns the seconds from first write to last byte back.</summary>
    public static async Task<double> TunnelEchoAsync(OverlayTunnel tunnel, long bytes, bool complete, Action<long>? progress, CancellationToken cancellationToken)
    {
        var chunk = new byte[tunnel.PreferredWriteSize];
        RandomNumberGenerator.Fill(chunk);
        var started = Stopwatch.GetTimestamp();
        var writer = Task.Run(async () =>
        {
            for (var sent = 0L; sent < bytes;)
            {
                var count = (int)Math.Min(chunk.Length, bytes - sent);
                sent += count;
                await tunnel.WriteAsync(chunk.AsMemory(0, count), final: complete && sent == bytes, cancellationToken);
            }
        }, cancellationToken);

        var buffer = new byte[chunk.Length];
        var received = 0L;
        while (received < bytes)
        {
            var read = await tunnel.ReadAsync(buffer, cancellationToken);
            if (read == 0)
            {
                break;
            }

            received += read;
            progress?.Invoke(read);
        }

        await writer;
        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        if (received != bytes || (complete && await tunnel.ReadAsync(buffer, cancellationToken) != 0))
        {
            throw new InvalidOperationException($"the tunnel echoed {received} of {bytes} bytes");
        }

        return seconds;
    }

    /// <summary>The same through the plain chain, in messages of <paramref name="messageBytes"/>.</summary>
    public static async Task<double> ChainEchoAsync(ChainChannels channels, IReadOnlyList<Uri> hops, long bytes, int messageBytes, CancellationToken cancellationToken)
    {
        using var call = channels.Open(hops, cancellationToken);
        var payload = new byte[messageBytes];
        RandomNumberGenerator.Fill(payload);
        var full = new Chunk { Data = UnsafeByteOperations.UnsafeWrap(payload) };
        var started = Stopwatch.GetTimestamp();
        var writer = Task.Run(async () =>
        {
            for (var sent = 0L; sent < bytes;)
            {
                var count = (int)Math.Min(messageBytes, bytes - sent);
                sent += count;
                await call.RequestStream.WriteAsync(count == messageBytes ? full : new Chunk { Data = UnsafeByteOperations.UnsafeWrap(payload.AsMemory(0, count)) }, cancellationToken);
            }

            await call.RequestStream.CompleteAsync();
        }, cancellationToken);

        var received = 0L;
        while (await call.ResponseStream.MoveNext(cancellationToken))
        {
            received += call.ResponseStream.Current.Data.Length;
        }

        await writer;
        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        if (received != bytes)
        {
            throw new InvalidOperationException($"the plain chain echoed {received} of {bytes} bytes");
        }

        return seconds;
    }

    /// <summary>One round trip over an open tunnel: one write of <paramref name="request"/> (one cell, flushed), read until it is all back.</summary>
    public static async Task<double> TunnelRoundTripAsync(OverlayTunnel tunnel, byte[] request, byte[] buffer, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        await tunnel.WriteAsync(request, final: false, cancellationToken);
        for (var received = 0; received < request.Length;)
        {
            var read = await tunnel.ReadAsync(buffer, cancellationToken);
            received += read > 0 ? read : throw new InvalidOperationException("the tunnel ended during a round trip");
        }

        return Measure.Milliseconds(started);
    }

    /// <summary>One round trip over an open plain-chain call: one message out, one back.</summary>
    public static async Task<double> ChainRoundTripAsync(AsyncDuplexStreamingCall<Chunk, Chunk> call, Chunk message, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        await call.RequestStream.WriteAsync(message, cancellationToken);
        if (!await call.ResponseStream.MoveNext(cancellationToken))
        {
            throw new InvalidOperationException("the plain chain ended during a round trip");
        }

        return Measure.Milliseconds(started);
    }

    /// <summary>Ends a tunnel cleanly: completes the request, reads the rest of the echo, disposes.</summary>
    public static async Task CloseTunnelAsync(OverlayTunnel tunnel, CancellationToken cancellationToken)
    {
        await using (tunnel)
        {
            await tunnel.CompleteAsync(cancellationToken);
            var sink = new byte[tunnel.PreferredWriteSize];
            while (await tunnel.ReadAsync(sink, cancellationToken) > 0)
            {
            }
        }
    }

    /// <summary>Ends a plain-chain call cleanly.</summary>
    public static async Task CloseChainAsync(AsyncDuplexStreamingCall<Chunk, Chunk> call, CancellationToken cancellationToken)
    {
        using (call)
        {
            await call.RequestStream.CompleteAsync();
            while (await call.ResponseStream.MoveNext(cancellationToken))
            {
            }
        }
    }

    /// <summary>
    /// Time to the first reply byte on a fresh tunnel: open with the 64-byte request and its end marker
    /// in the header's message (as <see cref="TunnelClient.RoundTripAsync"/> sends a short request), first
    /// read; and the part of it OpenAsync took (header built, written to the first hop with the request).
    /// With <paramref name="reuse"/>, a new stream on the route the origin keeps instead (built by the first).
    /// </summary>
    public static async Task<(double Total, double Open)> FreshTunnelFirstReplyAsync(OverlayNode origin, IReadOnlyList<NodeId> route, byte[] request, CancellationToken cancellationToken,
        bool reuse = false)
    {
        var buffer = new byte[4096];
        var started = Stopwatch.GetTimestamp();
        await using var tunnel = await origin.Tunnels.OpenAsync(
            new TunnelRequest { Route = route, Deadline = Deadline, InitialData = request, CompleteWithInitialData = true, Reuse = reuse }, cancellationToken);
        var open = Measure.Milliseconds(started);
        if (await tunnel.ReadAsync(buffer, cancellationToken) == 0)
        {
            throw new InvalidOperationException("a fresh tunnel ended without a reply");
        }

        var elapsed = Measure.Milliseconds(started);
        while (await tunnel.ReadAsync(buffer, cancellationToken) > 0)
        {
        }

        return (elapsed, open);
    }

    /// <summary>The same through the plain chain: a fresh call, one message, end of request, first reply message.</summary>
    public static Task<double> FreshChainFirstReplyAsync(ChainChannels channels, IReadOnlyList<Uri> hops, Chunk message, CancellationToken cancellationToken) =>
        ChainFirstReplyAsync(() => channels.Open(hops, cancellationToken), message, cancellationToken);

    /// <summary>
    /// Opens a plain-chain call with <paramref name="open"/>, sends <paramref name="message"/> and ends the request;
    /// returns the milliseconds from the open to the first reply message, after reading the reply to its end.
    /// </summary>
    public static async Task<double> ChainFirstReplyAsync(Func<AsyncDuplexStreamingCall<Chunk, Chunk>> open, Chunk message, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        using var call = open();
        await call.RequestStream.WriteAsync(message, cancellationToken);
        await call.RequestStream.CompleteAsync();
        if (!await call.ResponseStream.MoveNext(cancellationToken))
        {
            throw new InvalidOperationException("a fresh plain-chain call ended without a reply");
        }

        var elapsed = Measure.Milliseconds(started);
        while (await call.ResponseStream.MoveNext(cancellationToken))
        {
        }

        return elapsed;
    }
}
