using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Trace;
using Overlay.Host;
using Overlay.Identity;

namespace Overlay.Telemetry.Tests;

/// <summary>A <see cref="TestCluster"/> whose nodes export their traces to one <see cref="OtlpReceiver"/>.</summary>
internal sealed class TracedCluster : IAsyncDisposable
{
    private TracedCluster(OtlpReceiver receiver, TestCluster cluster)
    {
        Receiver = receiver;
        Cluster = cluster;
        Nodes = [.. cluster.Nodes.Select(n => n.Node)];
    }

    public OtlpReceiver Receiver { get; }

    public TestCluster Cluster { get; }

    /// <summary>The nodes; these tests start no node later and restart none.</summary>
    public IReadOnlyList<OverlayNode> Nodes { get; }

    /// <summary>Every request the nodes received, with its headers.</summary>
    public IReadOnlyList<RecordedRequest> Requests => Cluster.Headers.Requests;

    public OverlayNode this[NodeId id] => Cluster[id].Node;

    /// <summary>
    /// Starts <paramref name="nodes"/> nodes and waits until each sees the others up. With
    /// <paramref name="allowList"/> the network's membership is controlled: every node admits
    /// exactly the cluster's node ids (<c>Overlay:Directory:AllowedNodeIds</c>).
    /// </summary>
    public static async Task<TracedCluster> StartAsync(int nodes, Func<int, Dictionary<string, string?>>? configure = null,
        Func<int, Action<IServiceCollection>?>? services = null, bool allowList = false)
    {
        var receiver = await OtlpReceiver.StartAsync();
        try
        {
            var cluster = await TestCluster.StartAsync(nodes, new ClusterOptions
            {
                GossipInterval = TimeSpan.FromMilliseconds(100),
                NodeDefaultHandler = true,
                LogLevel = LogLevel.Warning,
                AllowList = allowList,
                Configuration = new Dictionary<string, string?> { ["Overlay:Telemetry:OtlpEndpoint"] = receiver.Endpoint.ToString() },
                ConfigureNode = (i, configuration) =>
                {
                    foreach (var (key, value) in configure?.Invoke(i) ?? [])
                    {
                        configuration[key] = value;
                    }
                },
                ConfigureServices = (i, collection) => services?.Invoke(i)?.Invoke(collection),
            });
            cluster.Headers.Enabled = true;
            return new TracedCluster(receiver, cluster);
        }
        catch
        {
            await receiver.DisposeAsync();
            throw;
        }
    }

    /// <summary>Exports what every node (but <paramref name="except"/>) has recorded so far.</summary>
    public void Flush(OverlayNode? except = null)
    {
        foreach (var node in Nodes.Where(n => n != except))
        {
            node.Services.GetRequiredService<TracerProvider>().ForceFlush((int)TestTimeouts.Seconds(5).TotalMilliseconds);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Cluster.DisposeAsync();
        await Receiver.DisposeAsync();
    }
}
