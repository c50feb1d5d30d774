using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Overlay.Identity;
using Overlay.Testing.Cluster;

namespace Overlay.Bench.Network;

/// <summary>
/// The bench's nodes: a <see cref="TestCluster"/> with the test hooks off (each node runs exactly as
/// shipped) and its own logging, each node also serving the plain chain (<see cref="ChainService"/>)
/// on the same Kestrel endpoint. They join from one seed with 200 ms gossip; once every node knows
/// every other one, gossip is paused so that it does not load the 2 cores while figures are taken
/// (a node's default interval is 5 s; 20 nodes gossiping every 200 ms open ~300 connections/s).
/// </summary>
internal static class BenchCluster
{
    /// <summary>The configuration every node gets, beyond what the cluster sets (data directory, URL, seed).</summary>
    public static IReadOnlyDictionary<string, string?> SharedConfiguration { get; } = new Dictionary<string, string?>
    {
        ["Overlay:Directory:GossipFanout"] = "3",
        ["Logging:LogLevel:Default"] = "Warning",
        ["Logging:LogLevel:Microsoft.AspNetCore"] = "Error",
    };

    /// <param name="count">How many nodes.</param>
    /// <param name="formTimeout">How long every node may take to know every other one.</param>
    /// <param name="cancellationToken">Stops the start.</param>
    /// <param name="overrides">Configuration over <see cref="SharedConfiguration"/>, for every node.</param>
    /// <param name="pauseGossip">False keeps gossip running, so that nodes started later (<see cref="TestCluster.ReplaceAsync"/>) become known.</param>
    public static Task<TestCluster> StartAsync(int count, TimeSpan formTimeout, CancellationToken cancellationToken,
        IReadOnlyDictionary<string, string?>? overrides = null, bool pauseGossip = true)
    {
        var configuration = new Dictionary<string, string?>(SharedConfiguration);
        foreach (var (key, value) in overrides ?? new Dictionary<string, string?>())
        {
            configuration[key] = value;
        }

        return TestCluster.StartAsync(count, new ClusterOptions
        {
            GossipInterval = TimeSpan.FromMilliseconds(200),
            Configuration = configuration,
            TestHooks = false,
            CaptureLogs = false,
            PauseGossipOnceFormed = pauseGossip,
            ConfigureServices = (_, services) =>
            {
                services.AddSingleton<ChainChannels>();
                services.AddSingleton<ChainService>();
            },
            ConfigureApplication = (_, app) => app.MapGrpcService<ChainService>(),
        }, formTimeout.TotalSeconds, cancellationToken);
    }

    public static NodeId Id(this TestCluster cluster, int index) => cluster[index].Id;

    public static Uri Endpoint(this TestCluster cluster, int index) => cluster[index].LinkEndpoint;

    /// <summary>The plain chain's client channels of node <paramref name="index"/>.</summary>
    public static ChainChannels Chain(this TestCluster cluster, int index) => cluster[index].Services.GetRequiredService<ChainChannels>();
}
