using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;

namespace Overlay.Deploy.Tests;

/// <summary>deploy/local/run.sh: separate node processes on loopback, a readiness wait, a multi-hop ping.</summary>
public sealed partial class LocalRunScriptTests(ITestOutputHelper log)
{
    private const string Script = "deploy/local/run.sh";

    [Fact]
    public async Task Four_nodes_form_an_overlay_and_a_ping_crosses_two_relays()
    {
        const int nodes = 4;
        var basePort = Ports.FreeRange(nodes);

        var result = await RunScriptAsync(TestTimeouts.Seconds(120), "--nodes", "4", "--relays", "2", "--count", "3", "--base-port", basePort.ToString(System.Globalization.CultureInfo.InvariantCulture));
        log.WriteLine($"run.sh took {result.Elapsed.TotalSeconds:F1} s");
        DeleteLogs(result.Output);

        Assert.True(result.ExitCode == 0, $"run.sh exited with {result.ExitCode}:\n{result.Output}");
        var pings = PingLine().Matches(result.Output);
        Assert.Equal(3, pings.Count);
        Assert.Contains("summary: 3 of 3 round trips through 2 relays succeeded", result.Output, StringComparison.Ordinal);
        Assert.Contains("run.sh: 4 nodes healthy, each knows the other 3", result.Output, StringComparison.Ordinal);
        // Every node it started was stopped: nothing listens on their ports any more.
        Assert.All(Enumerable.Range(basePort, nodes), port => Assert.False(Ports.IsListening(port), $"port {port} still listens"));
    }

    [Fact]
    public async Task A_port_in_use_is_refused_before_any_node_starts()
    {
        var basePort = Ports.FreeRange(2);
        using var squatter = new TcpListener(IPAddress.Loopback, basePort + 1);
        squatter.Start();
        try
        {
            var result = await RunScriptAsync(TestTimeouts.Seconds(30), "--nodes", "2", "--relays", "1", "--base-port", basePort.ToString(System.Globalization.CultureInfo.InvariantCulture));

            Assert.Equal(4, result.ExitCode);
            Assert.Contains($"port {basePort + 1} on 127.0.0.1 is in use", result.Output, StringComparison.Ordinal);
            Assert.DoesNotContain("starting", result.Output, StringComparison.Ordinal);
        }
        finally
        {
            squatter.Stop();
        }
    }

    [Theory]
    [InlineData("--nodes", "3", "--relays", "3")]
    [InlineData("--nodes", "lots")]
    [InlineData("--frobnicate")]
    public async Task Bad_arguments_are_a_usage_error(params string[] arguments)
    {
        var result = await RunScriptAsync(TestTimeouts.Seconds(30), arguments);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("usage: deploy/local/run.sh", result.Output, StringComparison.Ordinal);
    }

    private Task<ProcessResult> RunScriptAsync(TimeSpan timeout, params string[] arguments)
    {
        _ = Repo.BuiltHostDll; // the script runs this build
        return Processes.RunAsync("bash", [Script, .. arguments], timeout, new Dictionary<string, string>
        {
            ["OVERLAY_SKIP_BUILD"] = "1",
            ["OVERLAY_CONFIGURATION"] = Repo.Configuration,
        }, log);
    }

    private static void DeleteLogs(string output)
    {
        if (LogsLine().Match(output) is { Success: true } logs && Directory.Exists(logs.Groups[1].Value))
        {
            var work = Directory.GetParent(logs.Groups[1].Value)!;
            if (work.Name.StartsWith("overlay-localnet.", StringComparison.Ordinal))
            {
                work.Delete(recursive: true);
            }
        }
    }

    [GeneratedRegex(@"^ping \d+: 2 relays, 3 hops, to [0-9a-f]{8}: \d+\.\d ms$", RegexOptions.Multiline)]
    private static partial Regex PingLine();

    [GeneratedRegex(@"^run\.sh: logs are in (.+)$", RegexOptions.Multiline)]
    private static partial Regex LogsLine();
}
