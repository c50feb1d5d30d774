using System.Diagnostics;
using System.Globalization;
using Spectre.Console;

namespace Overlay.Cli;

/// <summary>A progress display on standard error for long transfers, only when it is a terminal.</summary>
internal sealed class Progress : IDisposable
{
    private const long ShowAfterBytes = 4 * 1024 * 1024;
    private readonly CliIO? _io;
    private readonly Lock _lock = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly CancellationTokenSource _stop = new();
    private Task? _display;
    private long _sent;
    private long _received;

    private Progress(CliIO? io) => _io = io;

    public static Progress Start(CliIO io, bool json) => new(json || !io.Interactive ? null : io);

    public void Sent(int bytes) => Update(ref _sent, bytes);

    public void Received(int bytes) => Update(ref _received, bytes);

    private void Update(ref long counter, int bytes)
    {
        if (_io is null)
        {
            return;
        }

        if (Interlocked.Add(ref counter, bytes) >= ShowAfterBytes && _display is null)
        {
            lock (_lock)
            {
                _display ??= Task.Run(ShowAsync);
            }
        }
    }

    private async Task ShowAsync()
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(_io!.Error) });
        await console.Progress()
            .Columns(new TaskDescriptionColumn(), new SpinnerColumn(), new ElapsedTimeColumn())
            .StartAsync(async context =>
            {
                var task = context.AddTask("transfer").IsIndeterminate();
                while (!_stop.IsCancellationRequested)
                {
                    var seconds = Math.Max(0.001, _clock.Elapsed.TotalSeconds);
                    var sent = Interlocked.Read(ref _sent);
                    var received = Interlocked.Read(ref _received);
                    task.Description = string.Create(CultureInfo.InvariantCulture,
                        $"sent {sent / 1048576.0:F1} MiB, received {received / 1048576.0:F1} MiB ({(sent + received) / 1048576.0 / seconds:F1} MiB/s)");
                    try
                    {
                        await Task.Delay(200, _stop.Token);
                    }
                    catch (OperationCanceledException)
                    {
                        break;
                    }
                }

                task.StopTask();
            });
    }

    public void Dispose()
    {
        _stop.Cancel();
        _display?.GetAwaiter().GetResult();
        _stop.Dispose();
    }
}
