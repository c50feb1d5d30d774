using System.Diagnostics;
using System.Text.RegularExpressions;
using Overlay.Host.Tests.Infrastructure;

namespace Overlay.Host.Tests;

/// <summary>The devnet verb, run from the built assembly exactly as a user would (never through <c>dotnet run</c>, which rebuilds).</summary>
public sealed partial class DevnetTests(ITestOutputHelper output)
{
    [Fact]
    public async Task The_devnet_verb_of_the_built_assembly_forms_an_overlay_and_pings_through_it()
    {
        var assembly = FindHostAssembly();
        using var deadline = TestTimeouts.After(60);
        // The dotnet host running these tests (the SDK sets DOTNET_HOST_PATH for its children), else the one on PATH.
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet")
        {
            ArgumentList = { assembly, "devnet", "--nodes", "5", "--relays", "3", "--pings", "2" },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        using var process = Process.Start(start) ?? throw new InvalidOperationException("dotnet did not start");
        var stdout = process.StandardOutput.ReadToEndAsync(deadline.Token);
        var stderr = process.StandardError.ReadToEndAsync(deadline.Token);
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"the devnet did not exit within {TestTimeouts.Seconds(60)}");
        }

        var lines = (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        output.WriteLine($"{assembly} exited with {process.ExitCode}:");
        foreach (var line in lines)
        {
            output.WriteLine(line);
        }

        Assert.True(process.ExitCode == 0, $"exit code {process.ExitCode}; stderr: {await stderr}");
        Assert.Equal("devnet: starting 5 nodes on loopback (MaxRelays 32)", lines[0]);
        Assert.Contains(lines, l => l.StartsWith("devnet: 5 nodes listening after ", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("devnet: every node knows the other 4 after ", StringComparison.Ordinal));
        for (var k = 1; k <= 2; k++)
        {
            Assert.Contains(lines, l => PingLine().Match(l) is { Success: true } m && m.Groups["k"].Value == k.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        Assert.Matches(SummaryLine(), lines[^1]);
        Assert.Empty(await stderr);
    }

    // The node's own build output, in the configuration these tests were built in; the copy next
    // to this test assembly (a project reference) is the same build.
    private static string FindHostAssembly()
    {
        var here = new DirectoryInfo(AppContext.BaseDirectory);
        var configuration = here.Parent?.Name ?? "Release"; // bin/<configuration>/<tfm>/
        for (var directory = here; directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Overlay.sln")))
            {
                var built = Path.Combine(directory.FullName, "src", "Overlay.Host", "bin", configuration, here.Name, "Overlay.Host.dll");
                if (File.Exists(built))
                {
                    return built;
                }

                break;
            }
        }

        var copied = Path.Combine(here.FullName, "Overlay.Host.dll");
        Assert.True(File.Exists(copied) && File.Exists(Path.ChangeExtension(copied, ".runtimeconfig.json")), $"no built Overlay.Host.dll found from {here.FullName}");
        return copied;
    }

    [GeneratedRegex(@"^ping (?<k>\d+): 3 relays, 4 hops, to [0-9a-f]{8}: \d+\.\d ms$")]
    private static partial Regex PingLine();

    [GeneratedRegex(@"^summary: 2 round trips through 3 relays: min \d+\.\d ms, median \d+\.\d ms, max \d+\.\d ms$")]
    private static partial Regex SummaryLine();
}
