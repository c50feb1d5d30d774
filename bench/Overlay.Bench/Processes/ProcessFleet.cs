using System.Net;
using System.Net.Sockets;

namespace Overlay.Bench.Processes;

/// <summary>
/// The processes of one side (the nodes, or the chain's hops), each started by the same function
/// of its index, so that one can be restarted exactly as it was first started.
/// </summary>
internal sealed class ProcessFleet : IAsyncDisposable
{
    private readonly Func<int, ChildProcess> _start;
    private readonly ChildProcess[] _processes;

    private ProcessFleet(Func<int, ChildProcess> start, int count)
    {
        _start = start;
        _processes = new ChildProcess[count];
    }

    public int Count => _processes.Length;

    public ChildProcess this[int index] => _processes[index];

    /// <summary>Starts <paramref name="count"/> processes at once.</summary>
    public static ProcessFleet Start(int count, Func<int, ChildProcess> start)
    {
        var fleet = new ProcessFleet(start, count);
        for (var i = 0; i < count; i++)
        {
            fleet._processes[i] = start(i);
        }

        return fleet;
    }

    /// <summary>Loopback ports free right now (the kernel's choice), for processes that must be told their port.</summary>
    public static int[] FreePorts(int count)
    {
        var listeners = Enumerable.Range(0, count).Select(_ => new TcpListener(IPAddress.Loopback, 0)).ToArray();
        try
        {
            foreach (var listener in listeners)
            {
                listener.Start();
            }

            return [.. listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port)];
        }
        finally
        {
            foreach (var listener in listeners)
            {
                listener.Stop();
            }
        }
    }

    /// <summary>User + system CPU seconds of every process of the fleet.</summary>
    public double CpuSeconds() => _processes.Sum(p => p.CpuSeconds());

    /// <summary>Context switches of every thread of every process of the fleet.</summary>
    public (long Voluntary, long Involuntary) ContextSwitches() =>
        _processes.Select(p => p.ContextSwitches()).Aggregate((0L, 0L), (sum, c) => (sum.Item1 + c.Voluntary, sum.Item2 + c.Involuntary));

    /// <summary>Throws, with the end of its log, if a process has exited.</summary>
    public void ThrowIfExited()
    {
        for (var i = 0; i < _processes.Length; i++)
        {
            if (_processes[i].HasExited)
            {
                throw new InvalidOperationException($"process {i} ({_processes[i].LogPath}) exited; its log ends:\n{_processes[i].Tail(20)}");
            }
        }
    }

    /// <summary>Stops process <paramref name="index"/> gracefully (SIGTERM) and starts it again as before; returns the new process.</summary>
    public async Task<ChildProcess> RestartAsync(int index, TimeSpan grace)
    {
        await _processes[index].StopAsync(grace);
        await _processes[index].DisposeAsync();
        _processes[index] = _start(index);
        return _processes[index];
    }

    public async ValueTask DisposeAsync() => await Task.WhenAll(_processes.Where(p => p is not null).Select(p => p.DisposeAsync().AsTask()));
}
