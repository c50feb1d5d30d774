namespace Overlay.Host.Tests.Streams;

/// <summary>
/// Six nodes; routes close after half a second idle. Node 5 is a strict destination: one stream at
/// a time per route and three per route in all, so its refusals can be seen.
/// </summary>
public sealed class StreamRouteFixture : IAsyncLifetime
{
    public const int StrictDestination = 5;

    internal TestCluster Cluster { get; private set; } = null!;

    public async Task InitializeAsync() => Cluster = await TestCluster.StartAsync(6, new ClusterOptions
    {
        ConfigureNode = (index, configuration) =>
        {
            configuration["Overlay:Tunnels:Streams:RouteIdleTimeout"] = "00:00:00.5";
            if (index == StrictDestination)
            {
                configuration["Overlay:Tunnels:Streams:MaxConcurrentStreamsPerRoute"] = "1";
                configuration["Overlay:Tunnels:Streams:MaxStreamsPerRoute"] = "3";
            }
        },
    });

    public async Task DisposeAsync() => await Cluster.DisposeAsync();
}
