using System.Net;
using System.Net.Sockets;

namespace Overlay.Cli.Forwarding;

/// <summary>
/// Accepts TCP connections on a local address and serves each with its own task, at most a given
/// number at once (the rest wait in the listen backlog). A connection whose service fails is reset
/// and logged with the reason; cancelling stops accepting and ends every connection.
/// The announcement goes to the log once the address is bound.
/// </summary>
internal static class ConnectionLoop
{
    public static async Task RunAsync(IPEndPoint endpoint, int maxConnections, string announcement, Func<Socket, CancellationToken, Task> serve,
        TextWriter log, CancellationToken cancellationToken)
    {
        using var listener = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.Bind(endpoint);
            listener.Listen(128);
        }
        catch (SocketException exception)
        {
            throw new CliException(ExitCodes.Failed, $"cannot listen on {endpoint}: {exception.Message}");
        }

        await log.WriteLineAsync(announcement); // once connections are taken: scripts may wait for it

        using var slots = new SemaphoreSlim(maxConnections);
        try
        {
            while (true)
            {
                await slots.WaitAsync(cancellationToken);
                Socket connection;
                try
                {
                    connection = await listener.AcceptAsync(cancellationToken);
                }
                catch (SocketException exception)
                {
                    slots.Release();
                    throw new CliException(ExitCodes.Failed, $"accepting connections on {endpoint} failed: {exception.SocketErrorCode} ({exception.Message})");
                }
                catch
                {
                    slots.Release();
                    throw;
                }

                _ = ServeAsync(connection, serve, log, slots, cancellationToken);
            }
        }
        finally
        {
            // Every slot back: every connection ended (the cancellation reached each one).
            for (var i = 0; i < maxConnections; i++)
            {
                await slots.WaitAsync(CancellationToken.None);
            }
        }
    }

    private static async Task ServeAsync(Socket connection, Func<Socket, CancellationToken, Task> serve, TextWriter log, SemaphoreSlim slots,
        CancellationToken cancellationToken)
    {
        var peer = connection.RemoteEndPoint;
        try
        {
            connection.NoDelay = true;
            await serve(connection, cancellationToken);
            connection.Dispose();
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            TunnelPump.Reset(connection); // stopping: not a failure of this connection
        }
        catch (Exception exception)
        {
            TunnelPump.Reset(connection);
            await log.WriteLineAsync($"overlay: connection from {peer} closed: {FailureText.Of(exception)}");
        }
        finally
        {
            slots.Release();
        }
    }
}
