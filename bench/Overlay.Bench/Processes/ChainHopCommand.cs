using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Overlay.Bench.Network;
using Overlay.Host;
using Overlay.Host.Options;

namespace Overlay.Bench.Processes;

/// <summary>
/// <c>chain-hop --url URL --data DIR</c>: one hop of the plain chain as a process of its own, for the
/// multi-process harness. It is built by the node's own builder (<see cref="OverlayNode.Create"/>)
/// with the node's defaults, control API off and no seed, and serves <see cref="ChainService"/> on
/// its link endpoint, so it has the node's Kestrel and HTTP/2 limits by construction, as the chain
/// of the one-process harness does. It does no overlay work; it runs until SIGTERM.
/// </summary>
internal static class ChainHopCommand
{
    public static async Task<int> RunAsync(string url, string dataDirectory)
    {
        var node = OverlayNode.Create(new OverlayNodeSettings
        {
            Configuration = SingleHostNetwork.With(new Dictionary<string, string?>
            {
                ["Overlay:Link:Url"] = url,
                ["Overlay:DataDirectory"] = dataDirectory,
                ["Overlay:Control:Enabled"] = "false",
                ["Logging:LogLevel:Default"] = "Warning",
            }),
            ConfigureServices = services =>
            {
                services.AddSingleton<ChainChannels>();
                services.AddSingleton<ChainService>();
            },
            ConfigureApplication = app => app.MapGrpcService<ChainService>(),
        });
        await node.App.RunAsync();
        await node.DisposeAsync();
        return 0;
    }
}
