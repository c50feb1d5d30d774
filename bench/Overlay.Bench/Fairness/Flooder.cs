using System.Diagnostics;
using System.Globalization;
using System.Net;

namespace Overlay.Bench.Fairness;

/// <summary>The <see cref="FloodCommand"/> child process: started pinned to CPU 1 (or unpinned), read for its progress, stopped by closing its input.</summary>
internal sealed class Flooder
{
    private readonly Process _process;
    private readonly Task _reader;
    private readonly Lock _lock = new();
    private FloodCount _latest;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private Flooder(Process process)
    {
        _process = process;
        _reader = ReadAsync();
    }

    public static Flooder Start(bool shared, Uri target, uint epoch, int headerBytes, int streams, IPAddress source)
    {
        var start = SelfProcess.StartInfo(shared ? [] : ["taskset", "-c", "1"],
        [
            "flood", "--target", target.ToString(), "--epoch", epoch.ToString(CultureInfo.InvariantCulture),
            "--header-bytes", headerBytes.ToString(CultureInfo.InvariantCulture), "--streams", streams.ToString(CultureInfo.InvariantCulture),
            "--source", source.ToString(),
        ]);
        start.RedirectStandardInput = true;
        start.RedirectStandardOutput = true;
        return new Flooder(Process.Start(start) ?? throw new InvalidOperationException("could not start the flooder"));
    }

    /// <summary>Waits for a progress line that satisfies <paramref name="condition"/>.</summary>
    public async Task<FloodCount> WaitForAsync(Func<FloodCount, bool> condition, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        while (true)
        {
            Task changed;
            lock (_lock)
            {
                if (condition(_latest))
                {
                    return _latest;
                }

                changed = _changed.Task;
            }

            if (_reader.IsCompleted)
            {
                throw new InvalidOperationException($"the flooder exited ({_process.ExitCode}) before: {_latest}");
            }

            await changed.WaitAsync(deadline.Token);
        }
    }

    public async Task StopAsync()
    {
        _process.StandardInput.Close();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        try
        {
            await _process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true);
            throw new InvalidOperationException("the flooder did not stop within 20 s of its input closing");
        }
        finally
        {
            await _reader;
            _process.Dispose();
        }
    }

    private async Task ReadAsync()
    {
        while (await _process.StandardOutput.ReadLineAsync() is { } line)
        {
            if (!line.StartsWith(FloodCommand.ProgressPrefix, StringComparison.Ordinal))
            {
                continue;
            }

            var fields = line[FloodCommand.ProgressPrefix.Length..].Split(' ');
            var count = new FloodCount(long.Parse(fields[0], CultureInfo.InvariantCulture), long.Parse(fields[2], CultureInfo.InvariantCulture), Stopwatch.GetTimestamp());
            lock (_lock)
            {
                _latest = count;
                _changed.TrySetResult();
                _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }
        }

        lock (_lock)
        {
            _changed.TrySetResult();
        }
    }
}

/// <summary>The flooder's counts at one progress line.</summary>
internal readonly record struct FloodCount(long Sent, long Processed, long Timestamp)
{
    public TimeSpan At => Stopwatch.GetElapsedTime(0, Timestamp);
}
