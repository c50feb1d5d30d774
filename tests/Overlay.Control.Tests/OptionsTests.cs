using Microsoft.Extensions.Options;
using Overlay.Host;

namespace Overlay.Control.Tests;

[Collection(SharedOverlayCollection.Name)]
public sealed class OptionsTests
{
    private static OverlayNode Node(string dataDirectory, Dictionary<string, string?> configuration)
    {
        configuration["Overlay:DataDirectory"] = dataDirectory;
        configuration["Logging:LogLevel:Default"] = "Warning";
        return OverlayNode.Create(new OverlayNodeSettings { Configuration = configuration });
    }

    [Theory]
    [InlineData("http://0.0.0.0:7401", "use https")]
    [InlineData("http://10.1.2.3:7401", "use https")]
    [InlineData("not a url", "absolute http or https URL")]
    public async Task Cleartext_control_beyond_loopback_is_refused_at_start(string url, string message)
    {
        var directory = Directory.CreateTempSubdirectory("overlay-options-");
        try
        {
            // Validation runs as the node is built or started, before anything listens.
            var error = await Assert.ThrowsAsync<OptionsValidationException>(async () =>
            {
                await using var node = Node(directory.FullName, new() { ["Overlay:Link:Url"] = "http://127.0.0.1:0", ["Overlay:Control:Url"] = url });
                await node.StartAsync();
            });
            Assert.Contains(message, error.Message, StringComparison.Ordinal);
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task The_link_message_limit_must_hold_a_header_with_a_full_batch_of_cells_framing_included()
    {
        var largest = Overlay.Protocol.LinkLimits.LargestMessage(Overlay.Protocol.NetworkParameters.Default, 8);
        var directory = Directory.CreateTempSubdirectory("overlay-options-");
        try
        {
            var error = await Assert.ThrowsAsync<OptionsValidationException>(async () =>
            {
                await using var node = Node(Path.Combine(directory.FullName, "small"), new()
                {
                    ["Overlay:Link:Url"] = "http://127.0.0.1:0",
                    ["Overlay:Link:MaxMessageBytes"] = (largest - 1).ToString(System.Globalization.CultureInfo.InvariantCulture),
                });
                await node.StartAsync();
            });
            Assert.Contains($"at least {largest} bytes", error.Message, StringComparison.Ordinal);

            await using var fits = Node(Path.Combine(directory.FullName, "fits"), new()
            {
                ["Overlay:Link:Url"] = "http://127.0.0.1:0",
                ["Overlay:Link:MaxMessageBytes"] = largest.ToString(System.Globalization.CultureInfo.InvariantCulture),
            });
            await fits.StartAsync();
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task A_node_on_a_dynamic_link_port_gets_a_dynamic_control_port_and_reads_a_configured_token()
    {
        var directory = Directory.CreateTempSubdirectory("overlay-options-");
        try
        {
            var tokenFile = Path.Combine(directory.FullName, "mounted.token");
            await File.WriteAllTextAsync(tokenFile, "a-configured-token-0123456789\n");
            await using var node = Node(Path.Combine(directory.FullName, "data"), new()
            {
                ["Overlay:Link:Url"] = "http://127.0.0.1:0",
                ["Overlay:Control:TokenFile"] = tokenFile,
            });
            await node.StartAsync();
            Assert.NotEqual(7401, node.Control.Url.Port);
            Assert.NotEqual(node.LinkEndpoint.Port, node.Control.Url.Port);
            Assert.Equal(tokenFile, node.Control.TokenFile);
            Assert.False(File.Exists(Path.Combine(directory.FullName, "data", "control.token")));

            using var client = new ControlClient(node.Control.Url, "a-configured-token-0123456789");
            var info = await client.Api.GetInfoAsync(new Protocol.Control.V1.GetInfoRequest());
            Assert.Equal(node.Id.ToString(), info.NodeId);
            await node.KillAsync();
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }
}
