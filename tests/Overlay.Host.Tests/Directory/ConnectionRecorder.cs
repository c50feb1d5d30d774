using System.Net;
using System.Net.Sockets;

namespace Overlay.Host.Tests.Directory;

/// <summary>
/// A TCP listener on 127.0.0.1 that records every connection made to it and closes it at once:
/// whether a node dialed an endpoint, whatever it meant to say there. Holding them open instead, it
/// is a peer that accepts and never answers.
/// </summary>
internal sealed class ConnectionRecorder : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;
    private readonly Lock _lock = new();
    private readonly bool _holdOpen;
    private readonly List<TcpClient> _held = [];
    private TaskCompletionSource _connected = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _connections;

    public ConnectionRecorder(bool holdOpen = false)
    {
        _holdOpen = holdOpen;
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public int Connections => Volatile.Read(ref _connections);

    /// <summary>Completes once at least <paramref name="count"/> connections were made.</summary>
    public async Task WaitForAsync(int count, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task next;
            lock (_lock)
            {
                next = _connected.Task;
            }

            if (Connections >= count)
            {
                return;
            }

            await next.WaitAsync(cancellationToken);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accepting;
        _held.ForEach(client => client.Dispose());
        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (true)
        {
            try
            {
                var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                Interlocked.Increment(ref _connections);
                TaskCompletionSource signal;
                lock (_lock)
                {
                    if (_holdOpen)
                    {
                        _held.Add(client);
                    }
                    else
                    {
                        client.Dispose();
                    }

                    signal = _connected;
                    _connected = new(TaskCreationOptions.RunContinuationsAsynchronously);
                }

                signal.TrySetResult();
            }
            catch (Exception exception) when (_stop.IsCancellationRequested && exception is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return; // stopped
            }
        }
    }
}
