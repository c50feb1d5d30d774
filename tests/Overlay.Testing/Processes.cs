using System.Diagnostics;
using System.Text;

namespace Overlay.Testing;

/// <summary>Runs a command to completion with a deadline; on timeout the whole process tree is killed.</summary>
internal static class Processes
{
    /// <summary>The dotnet host running these tests (the SDK sets DOTNET_HOST_PATH for its children), else the one on PATH.</summary>
    public static string Dotnet =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";

    public static async Task<ProcessResult> RunAsync(string fileName, IEnumerable<string> arguments, TimeSpan timeout,
        IReadOnlyDictionary<string, string>? environment = null, ITestOutputHelper? log = null)
    {
        await using var running = RunningProcess.Start(fileName, arguments, environment, log);
        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            return await running.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            await running.KillAsync();
            throw new TimeoutException($"'{fileName} {string.Join(' ', arguments)}' did not finish within {timeout.TotalSeconds:F0} s; its output:\n{running.Output}");
        }
    }
}

/// <summary>
/// A started process whose output is collected as it arrives (and copied to the test's log); disposing
/// it kills its whole process tree if it still runs.
/// </summary>
internal sealed class RunningProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly StringBuilder _errorOutput = new();
    private readonly ITestOutputHelper? _log;
    private readonly string? _prefix;
    private readonly Stopwatch _clock = Stopwatch.StartNew();

    private RunningProcess(Process process, ITestOutputHelper? log, string? prefix)
    {
        _process = process;
        _log = log;
        _prefix = prefix;
    }

    /// <summary>Standard output and standard error so far, interleaved as they arrived.</summary>
    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>Starts <paramref name="fileName"/> in the repository root; <paramref name="prefix"/> marks its lines in the log.</summary>
    public static RunningProcess Start(string fileName, IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment = null,
        ITestOutputHelper? log = null, string? prefix = null)
    {
        var start = new ProcessStartInfo(fileName)
        {
            WorkingDirectory = Repo.Root,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["DOTNET_NOLOGO"] = "1";
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
        }

        var running = new RunningProcess(new Process { StartInfo = start }, log, prefix);
        running._process.OutputDataReceived += (_, e) => running.Append(e.Data, error: false);
        running._process.ErrorDataReceived += (_, e) => running.Append(e.Data, error: true);
        running._process.Start();
        running._process.StandardInput.Close();
        running._process.BeginOutputReadLine();
        running._process.BeginErrorReadLine();
        return running;
    }

    /// <summary>Waits until the process exits and its output is read.</summary>
    public async Task<ProcessResult> WaitForExitAsync(CancellationToken cancellationToken)
    {
        await _process.WaitForExitAsync(cancellationToken);
        lock (_output)
        {
            return new ProcessResult(_process.ExitCode, _output.ToString(), _errorOutput.ToString(), _clock.Elapsed);
        }
    }

    /// <summary>Kills the process tree and waits for it to end.</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }

        await _process.WaitForExitAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        _process.Dispose();
    }

    private void Append(string? line, bool error)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
            if (error)
            {
                _errorOutput.AppendLine(line);
            }
        }

        try
        {
            _log?.WriteLine(_prefix is null ? line : $"[{_prefix}] {line}");
        }
        catch (InvalidOperationException)
        {
            // The test already finished.
        }
    }
}
