using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using System.Text;

namespace Overlay.Deploy.Tests;

/// <summary>Where the repository and the built host are.</summary>
internal static class Repo
{
    /// <summary>The directory holding Overlay.sln.</summary>
    public static string Root { get; } = FindRoot();

    /// <summary>The configuration these tests were built in (the host was built in the same one).</summary>
    public static string Configuration { get; } =
        typeof(Repo).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Release";

    /// <summary>The built node: run it with <c>dotnet</c>, never <c>dotnet run</c>.</summary>
    public static string HostDll => Path.Combine(Root, "src", "Overlay.Host", "bin", Configuration, "net10.0", "Overlay.Host.dll");

    /// <summary>Multiplies every test deadline (OVERLAY_TEST_TIME_SCALE, default 1) for slow machines.</summary>
    public static TimeSpan Scaled(TimeSpan time)
    {
        var scale = double.TryParse(Environment.GetEnvironmentVariable("OVERLAY_TEST_TIME_SCALE"), NumberStyles.Float, CultureInfo.InvariantCulture, out var s) && s > 0 ? s : 1;
        return time * scale;
    }

    private static string FindRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Overlay.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException($"no Overlay.sln above {AppContext.BaseDirectory}");
    }
}

/// <summary>What a finished process printed.</summary>
/// <param name="ExitCode">Its exit code.</param>
/// <param name="Output">Standard output and standard error, interleaved as they arrived.</param>
/// <param name="Elapsed">Its wall-clock time.</param>
internal sealed record ProcessResult(int ExitCode, string Output, TimeSpan Elapsed);

/// <summary>Runs a command to completion with a deadline; on timeout the whole process tree is killed.</summary>
internal static class Processes
{
    public static async Task<ProcessResult> RunAsync(string fileName, IEnumerable<string> arguments, TimeSpan timeout,
        IReadOnlyDictionary<string, string>? environment = null, ITestOutputHelper? log = null)
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

        var output = new StringBuilder();
        void Append(string? line)
        {
            if (line is null)
            {
                return;
            }

            lock (output)
            {
                output.AppendLine(line);
            }

            try
            {
                log?.WriteLine(line);
            }
            catch (InvalidOperationException)
            {
                // The test already finished.
            }
        }

        var clock = Stopwatch.StartNew();
        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.Start();
        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            lock (output)
            {
                throw new TimeoutException($"'{fileName} {string.Join(' ', arguments)}' did not finish within {timeout.TotalSeconds:F0} s; its output:\n{output}");
            }
        }

        lock (output)
        {
            return new ProcessResult(process.ExitCode, output.ToString(), clock.Elapsed);
        }
    }
}

/// <summary>Loopback ports for the tests.</summary>
internal static class Ports
{
    /// <summary>
    /// The first of <paramref name="count"/> consecutive free ports, below the kernel's ephemeral
    /// range (32768 and up on Linux) so no outgoing connection takes one meanwhile.
    /// </summary>
    public static int FreeRange(int count)
    {
        for (var attempt = 0; attempt < 200; attempt++)
        {
            var first = Random.Shared.Next(20_000, 32_000 - count);
            if (Enumerable.Range(first, count).All(IsFree))
            {
                return first;
            }
        }

        throw new InvalidOperationException($"no {count} consecutive free ports found");
    }

    /// <summary>True when nothing listens on 127.0.0.1:<paramref name="port"/> and it can be bound.</summary>
    public static bool IsFree(int port)
    {
        try
        {
            var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            listener.Stop();
            return !IsListening(port);
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>True when something accepts connections on 127.0.0.1:<paramref name="port"/>.</summary>
    public static bool IsListening(int port)
    {
        try
        {
            using var client = new TcpClient();
            client.Connect(IPAddress.Loopback, port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
