using System.Buffers;
using System.Net.Sockets;
using System.Runtime.ExceptionServices;
using Overlay.Client;

namespace Overlay.Cli.Forwarding;

/// <summary>
/// Carries one TCP connection through one tunnel: each direction on its own loop, so a full window
/// one way never stalls the other; an end of stream one way becomes a half-close the other way
/// (the connection's FIN completes the tunnel's writing, the tunnel's end shuts down the socket's
/// sending). Each read waits for the previous write, so a slow reader slows its writer end to end.
/// </summary>
internal static class TunnelPump
{
    private const int BufferBytes = 64 * 1024;

    /// <summary>
    /// Returns once both directions ended well; otherwise stops the other direction and throws the
    /// first failure (the caller resets the connection and disposes the tunnel).
    /// </summary>
    public static async Task RunAsync(Socket connection, TunnelStream tunnel, CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        Exception? cause = null;

        async Task Guard(Task direction)
        {
            try
            {
                await direction;
            }
            catch (Exception exception)
            {
                Interlocked.CompareExchange(ref cause, exception, null);
                await stop.CancelAsync();
                throw;
            }
        }

        try
        {
            await Task.WhenAll(
                Guard(ToTunnelAsync(connection, tunnel, stop.Token)),
                Guard(ToConnectionAsync(tunnel, connection, stop.Token)));
        }
        catch (Exception) when (cause is not null)
        {
            // The other direction's cancellation is a consequence; the first failure is the reason.
            ExceptionDispatchInfo.Throw(cause);
        }
    }

    /// <summary>Resets the connection (RST, not FIN): its peer sees a failure, never a clean end of a cut-short stream.</summary>
    public static void Reset(Socket connection)
    {
        try
        {
            connection.LingerState = new LingerOption(true, 0);
        }
        catch (SocketException)
        {
            // Already closed by its peer: disposing below is all there is to do.
        }
        catch (ObjectDisposedException)
        {
            return;
        }

        connection.Dispose();
    }

    private static async Task ToTunnelAsync(Socket connection, TunnelStream tunnel, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(BufferBytes);
        try
        {
            int read;
            while ((read = await connection.ReceiveAsync(buffer.AsMemory(0, BufferBytes), SocketFlags.None, cancellationToken)) > 0)
            {
                await tunnel.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
            }

            await tunnel.CompleteWritingAsync(cancellationToken);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static async Task ToConnectionAsync(TunnelStream tunnel, Socket connection, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(BufferBytes);
        try
        {
            int read;
            while ((read = await tunnel.ReadAsync(buffer.AsMemory(0, BufferBytes), cancellationToken)) > 0)
            {
                await connection.SendAsync(buffer.AsMemory(0, read), SocketFlags.None, cancellationToken);
            }

            connection.Shutdown(SocketShutdown.Send);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
