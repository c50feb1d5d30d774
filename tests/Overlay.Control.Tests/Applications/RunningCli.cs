using System.Text;
using Overlay.Cli;

namespace Overlay.Control.Tests.Applications;

/// <summary>A long-running `overlay` command in process (expose, forward, socks) until stopped; its standard error readable meanwhile.</summary>
internal sealed class RunningCli : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly LockedText _error = new();
    private readonly Task<int> _running;

    private RunningCli(string[] args) =>
        _running = Task.Run(() => OverlayCli.RunAsync(args, new CliIO { Input = new MemoryStream(), Output = new MemoryStream(), Error = _error }, _stop.Token));

    /// <summary>What it wrote to standard error so far.</summary>
    public string Error => _error.ToString();

    public bool Exited => _running.IsCompleted;

    public static RunningCli Start(TestOverlay overlay, int node, params string[] args) =>
        new(["--node", overlay.Nodes[node].Control.Url.ToString(), "--token-file", overlay.Nodes[node].Control.TokenFile, .. args]);

    /// <summary>Waits until standard error contains <paramref name="text"/>; fails if the command exits first.</summary>
    public async Task WaitForErrorAsync(string text, CancellationToken cancellationToken)
    {
        await ListenTests.WaitAsync(() => Task.FromResult(Error.Contains(text, StringComparison.Ordinal) || Exited), cancellationToken);
        Assert.False(Exited && !Error.Contains(text, StringComparison.Ordinal), $"the command exited ({(Exited ? _running.Result : -1)}): {Error}");
    }

    /// <summary>Stops it as Ctrl+C does; returns its exit code.</summary>
    public async Task<int> StopAsync()
    {
        await _stop.CancelAsync();
        using var deadline = TestTimeouts.After(30);
        return await _running.WaitAsync(deadline.Token);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_running.IsCompleted)
        {
            Assert.Equal(ExitCodes.Cancelled, await StopAsync());
        }

        _stop.Dispose();
    }

    /// <summary>A text sink written by the command's tasks and read by the test at once.</summary>
    private sealed class LockedText : TextWriter
    {
        private readonly StringBuilder _text = new();

        public override Encoding Encoding => Encoding.UTF8;

        public override void Write(char value)
        {
            lock (_text)
            {
                _text.Append(value);
            }
        }

        public override void Write(string? value)
        {
            lock (_text)
            {
                _text.Append(value);
            }
        }

        public override void WriteLine(string? value) => Write(value + "\n");

        public override Task WriteLineAsync(string? value)
        {
            WriteLine(value);
            return Task.CompletedTask;
        }

        public override string ToString()
        {
            lock (_text)
            {
                return _text.ToString();
            }
        }
    }
}
