using System.Collections.Concurrent;
using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Trace;
using Overlay.Host;
using Overlay.Identity;

namespace Overlay.Telemetry.Tests;

/// <summary>Real nodes in this process exporting their traces to one <see cref="OtlpReceiver"/>.</summary>
internal sealed class TracedCluster : IAsyncDisposable
{
    private readonly DirectoryInfo _root = Directory.CreateTempSubdirectory("overlay-telemetry-");

    private TracedCluster(OtlpReceiver receiver) => Receiver = receiver;

    public static TimeSpan Timeout(double seconds) =>
        TimeSpan.FromSeconds(seconds * (double.TryParse(Environment.GetEnvironmentVariable("OVERLAY_TEST_TIMEOUT_SCALE"), CultureInfo.InvariantCulture, out var scale) ? scale : 1));

    public OtlpReceiver Receiver { get; }

    public List<OverlayNode> Nodes { get; } = [];

    /// <summary>Headers of every request a node received, by node.</summary>
    public ConcurrentBag<(string Path, Dictionary<string, string> Headers)> Requests { get; } = [];

    public OverlayNode this[NodeId id] => Nodes.Single(n => n.Id == id);

    /// <summary>
    /// Starts <paramref name="nodes"/> nodes and waits until each sees the others up. With
    /// <paramref name="allowList"/> the network's membership is controlled: every node admits
    /// exactly the cluster's node ids (<c>Overlay:Directory:AllowedNodeIds</c>).
    /// </summary>
    public static async Task<TracedCluster> StartAsync(int nodes, Func<int, Dictionary<string, string?>>? configure = null,
        Func<int, Action<IServiceCollection>?>? services = null, bool allowList = false)
    {
        var cluster = new TracedCluster(await OtlpReceiver.StartAsync());
        var members = allowList ? cluster.CreateIdentities(nodes) : [];
        for (var i = 0; i < nodes; i++)
        {
            var configuration = new Dictionary<string, string?>
            {
                ["Overlay:DataDirectory"] = cluster.DataDirectory(i),
                ["Overlay:Link:Url"] = "http://127.0.0.1:0",
                ["Overlay:Directory:GossipInterval"] = "00:00:00.100",
                ["Overlay:Telemetry:OtlpEndpoint"] = cluster.Receiver.Endpoint.ToString(),
                ["Logging:LogLevel:Default"] = "Warning",
            };
            for (var member = 0; member < members.Count; member++)
            {
                configuration[$"Overlay:Directory:AllowedNodeIds:{member}"] = members[member];
            }

            if (i > 0)
            {
                configuration["Overlay:Directory:Seeds:0"] = cluster.Nodes[0].LinkEndpoint.ToString();
            }

            foreach (var (key, value) in configure?.Invoke(i) ?? [])
            {
                configuration[key] = value;
            }

            var node = OverlayNode.Create(new OverlayNodeSettings
            {
                Configuration = configuration,
                ConfigureServices = services?.Invoke(i),
                ConfigureApplication = app => app.Use((context, next) =>
                {
                    cluster.Requests.Add((context.Request.Path, context.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase)));
                    return next(context);
                }),
            });
            cluster.Nodes.Add(node);
            await node.StartAsync();
        }

        using var formed = new CancellationTokenSource(Timeout(30));
        foreach (var node in cluster.Nodes)
        {
            await node.Directory.WaitUntilAsync(d => d.UpCount >= nodes - 1, formed.Token);
        }

        return cluster;
    }

    // The node ids are known before any node starts: each node's identity is created in its data directory now.
    private List<string> CreateIdentities(int nodes)
    {
        var ids = new List<string>();
        for (var i = 0; i < nodes; i++)
        {
            using var identity = NodeIdentity.LoadOrCreate(DataDirectory(i));
            ids.Add(identity.Id.ToString());
        }

        return ids;
    }

    private string DataDirectory(int node) => Path.Combine(_root.FullName, $"node{node}");

    public void Flush(OverlayNode? except = null)
    {
        foreach (var node in Nodes.Where(n => n != except))
        {
            node.Services.GetRequiredService<TracerProvider>().ForceFlush(5000);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var node in Nodes)
        {
            await node.StopAsync();
            await node.DisposeAsync();
        }

        await Receiver.DisposeAsync();
        _root.Delete(recursive: true);
    }
}
