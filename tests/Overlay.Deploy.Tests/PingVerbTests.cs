using System.Globalization;

namespace Overlay.Deploy.Tests;

/// <summary>The host's <c>ping</c> and <c>health</c> verbs (and the usage errors of all its verbs), run as the built assembly.</summary>
public sealed class PingVerbTests(ITestOutputHelper log)
{
    [Fact]
    public async Task Ping_exits_3_when_the_seed_does_not_exist()
    {
        var port = Ports.FreeRange(1);

        var result = await RunHostAsync(TestTimeouts.Seconds(30),
            "ping", "--seed", $"http://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}", "--relays", "1", "--timeout", "3");
        log.WriteLine($"ping took {result.Elapsed.TotalSeconds:F1} s");

        Assert.Equal(3, result.ExitCode);
        Assert.Contains("could not join", result.Output, StringComparison.Ordinal);
        Assert.Contains("no peer is up", result.Output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("ping", "--relays", "2")]
    [InlineData("ping", "--seed", "http://127.0.0.1:1", "--relays", "two")]
    [InlineData("ping", "--seed", "http://127.0.0.1:1", "--relays", "40")]
    [InlineData("ping", "--seed", "http://127.0.0.1:1", "--relays", "1", "--to", "not-a-node-id")]
    [InlineData("health", "--peers", "3")]
    [InlineData("key")]
    [InlineData("key", "one", "two")]
    public async Task Bad_arguments_exit_2_with_the_usage(params string[] arguments)
    {
        var result = await RunHostAsync(TestTimeouts.Seconds(30), arguments);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("usage: Overlay.Host", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Health_exits_3_when_nothing_listens()
    {
        var port = Ports.FreeRange(1);

        var result = await RunHostAsync(TestTimeouts.Seconds(30),
            "health", "--url", $"http://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}", "--timeout", "1");

        Assert.Equal(3, result.ExitCode);
        Assert.Contains("not ready", result.Output, StringComparison.Ordinal);
    }

    private Task<ProcessResult> RunHostAsync(TimeSpan timeout, params string[] arguments)
    {
        return Processes.RunAsync(Processes.Dotnet, [Repo.BuiltHostDll, .. arguments], timeout, log: log);
    }
}
