using System.Text.RegularExpressions;

namespace Overlay.Host.Tests;

/// <summary>The devnet verb, run from the built assembly exactly as a user would (never through <c>dotnet run</c>, which rebuilds).</summary>
public sealed partial class DevnetTests(ITestOutputHelper output)
{
    [Fact]
    public async Task The_devnet_verb_of_the_built_assembly_forms_an_overlay_and_pings_through_it()
    {
        var assembly = Repo.BuiltHostDll;
        var result = await Processes.RunAsync(Processes.Dotnet, [assembly, "devnet", "--nodes", "5", "--relays", "3", "--pings", "2"],
            TestTimeouts.Seconds(60), log: output);

        Assert.True(result.ExitCode == 0, $"exit code {result.ExitCode}; stderr: {result.ErrorOutput}");
        Assert.Empty(result.ErrorOutput);
        var lines = result.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Equal("devnet: starting 5 nodes on loopback (MaxRelays 32)", lines[0]);
        Assert.Contains(lines, l => l.StartsWith("devnet: 5 nodes listening after ", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("devnet: every node knows the other 4 after ", StringComparison.Ordinal));
        for (var k = 1; k <= 2; k++)
        {
            Assert.Contains(lines, l => PingLine().Match(l) is { Success: true } m && m.Groups["k"].Value == k.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        Assert.Matches(SummaryLine(), lines[^1]);
    }

    [GeneratedRegex(@"^ping (?<k>\d+): 3 relays, 4 hops, to [0-9a-f]{8}: \d+\.\d ms$")]
    private static partial Regex PingLine();

    [GeneratedRegex(@"^summary: 2 round trips through 3 relays: min \d+\.\d ms, median \d+\.\d ms, max \d+\.\d ms$")]
    private static partial Regex SummaryLine();
}
