using System.Net;
using System.Net.Sockets;

namespace Overlay.Host.Tests.Infrastructure;

/// <summary>
/// A TCP forwarder on 127.0.0.1 that relays every connection to a target port and keeps the bytes
/// each way: what a capture of the link would show, without tcpdump. The target is read when a
/// connection arrives, so the forwarder can be advertised before the node behind it has a port.
/// </summary>
internal sealed class RecordingForwarder : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Func<int> _targetPort;
    private readonly MemoryStream _toTarget = new();
    private readonly MemoryStream _fromTarget = new();
    private readonly List<Task> _pumps = [];
    private readonly Task _accepting;

    public RecordingForwarder(Func<int> targetPort)
    {
        _targetPort = targetPort;
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Every byte sent to the target so far, connections one after the other.</summary>
    public byte[] ToTarget()
    {
        lock (_toTarget)
        {
            return _toTarget.ToArray();
        }
    }

    /// <summary>Every byte the target sent back so far.</summary>
    public byte[] FromTarget()
    {
        lock (_fromTarget)
        {
            return _fromTarget.ToArray();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accepting;
        Task[] pumps;
        lock (_pumps)
        {
            pumps = [.. _pumps];
        }

        await Task.WhenAll(pumps);
        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (true)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception exception) when (_stop.IsCancellationRequested && exception is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return; // stopped
            }

            lock (_pumps)
            {
                _pumps.Add(ForwardAsync(client));
            }
        }
    }

    private async Task ForwardAsync(TcpClient client)
    {
        using (client)
        using (var target = new TcpClient())
        {
            try
            {
                var port = _targetPort();
                if (port == Port)
                {
                    throw new InvalidOperationException("the forwarder would forward to itself");
                }

                await target.ConnectAsync(IPAddress.Loopback, port, _stop.Token);
                using var ended = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                // Either side closing ends both: a half-open pair would hold the test's dispose.
                await Task.WhenAny(
                    PumpAsync(client.GetStream(), target.GetStream(), _toTarget, ended.Token),
                    PumpAsync(target.GetStream(), client.GetStream(), _fromTarget, ended.Token));
                await ended.CancelAsync();
            }
            catch (Exception exception) when (exception is OperationCanceledException or IOException or SocketException)
            {
                // The connection or the forwarder closed: what was relayed is recorded.
            }
        }
    }

    private static async Task PumpAsync(NetworkStream from, NetworkStream to, MemoryStream record, CancellationToken cancellationToken)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            int read;
            while ((read = await from.ReadAsync(buffer, cancellationToken)) > 0)
            {
                lock (record)
                {
                    record.Write(buffer, 0, read);
                }

                await to.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
            }
        }
        catch (Exception exception) when (exception is OperationCanceledException or IOException or SocketException)
        {
            // One side went away; the caller ends the other.
        }
    }
}
