using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Overlay.Host;

namespace Overlay.Control.Tests;

/// <summary>
/// A <see cref="TestCluster"/> whose nodes serve their control API, with what the control tests
/// need on top: each node's operator token and a client of its control endpoint.
/// </summary>
public sealed class TestOverlay : IAsyncDisposable
{
    /// <summary>The application token every node accepts besides its generated operator token.</summary>
    public const string ApplicationToken = TestCluster.ApplicationToken;

    private TestOverlay(TestCluster cluster)
    {
        Cluster = cluster;
        Nodes = [.. cluster.Nodes.Select(n => n.Node)];
    }

    /// <summary>The nodes; the control tests start no node later and restart none.</summary>
    public IReadOnlyList<OverlayNode> Nodes { get; }

    public string ApplicationTokenFile => Cluster.ApplicationTokenFile;

    internal TestCluster Cluster { get; }

    /// <summary>
    /// Starts <paramref name="count"/> nodes with control endpoints; <paramref name="configure"/> and
    /// <paramref name="services"/> change the node at an index. OVERLAY_TEST_DEBUG=1 logs Debug to the console.
    /// </summary>
    public static async Task<TestOverlay> StartAsync(int count, Action<int, Dictionary<string, string?>>? configure = null,
        Action<int, IServiceCollection>? services = null)
    {
        var debug = Environment.GetEnvironmentVariable("OVERLAY_TEST_DEBUG") == "1";
        var cluster = await TestCluster.StartAsync(count, new ClusterOptions
        {
            GossipInterval = TimeSpan.FromMilliseconds(200),
            NodeDefaultHandler = true,
            ControlEndpoints = true,
            CaptureLogs = !debug,
            LogLevel = LogLevel.Warning,
            Configuration = debug ? new Dictionary<string, string?> { ["Logging:LogLevel:Default"] = "Debug" } : new Dictionary<string, string?>(),
            ConfigureNode = configure,
            ConfigureServices = services,
        });
        return new TestOverlay(cluster);
    }

    /// <summary>Stops node <paramref name="node"/> at once, as a crash looks to its peers.</summary>
    public Task KillAsync(int node) => Cluster.KillAsync(node);

    public string OperatorToken(int node) => File.ReadAllText(Nodes[node].Control.TokenFile).Trim();

    /// <summary>A Control client for node <paramref name="node"/>, with the operator token unless told otherwise.</summary>
    public ControlClient Client(int node, string? token = null, bool noToken = false) =>
        new(Nodes[node].Control.Url, noToken ? null : token ?? OperatorToken(node));

    public ValueTask DisposeAsync() => Cluster.DisposeAsync();
}
