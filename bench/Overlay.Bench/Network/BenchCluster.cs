using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Overlay.Host;
using Overlay.Host.Directory;
using Overlay.Host.Options;
using Overlay.Identity;

namespace Overlay.Bench.Network;

/// <summary>
/// N real nodes in this process, built by the node's own builder (<see cref="OverlayNode.Create"/>)
/// on loopback port 0, each also serving the plain chain (<see cref="ChainService"/>) on the same
/// Kestrel endpoint. They join from one seed with 200 ms gossip; once every node knows every
/// other one, gossip is paused so that it does not load the 2 cores while figures are taken
/// (a node's default interval is 5 s; 20 nodes gossiping every 200 ms open ~300 connections/s).
/// </summary>
internal sealed class BenchCluster : IAsyncDisposable
{
    private readonly DirectoryInfo _root;
    private readonly List<OverlayNode> _nodes;
    private readonly IReadOnlyDictionary<string, string?>? _overrides;
    private int _created;

    private BenchCluster(DirectoryInfo root, List<OverlayNode> nodes, IReadOnlyDictionary<string, string?>? overrides)
    {
        _root = root;
        _nodes = nodes;
        _overrides = overrides;
    }

    public IReadOnlyList<OverlayNode> Nodes => _nodes;

    /// <summary>The configuration every node gets, beyond its data directory, URL and seed.</summary>
    public static IReadOnlyDictionary<string, string?> SharedConfiguration { get; } = new Dictionary<string, string?>(SingleHostNetwork.Configuration)
    {
        ["Overlay:Link:Url"] = "http://127.0.0.1:0",
        ["Overlay:Directory:GossipInterval"] = "00:00:00.200",
        ["Overlay:Directory:GossipFanout"] = "3",
        ["Logging:LogLevel:Default"] = "Warning",
        ["Logging:LogLevel:Microsoft.AspNetCore"] = "Error",
    };

    /// <param name="count">How many nodes.</param>
    /// <param name="formTimeout">How long every node may take to know every other one.</param>
    /// <param name="cancellationToken">Stops the start.</param>
    /// <param name="overrides">Configuration over <see cref="SharedConfiguration"/>, for every node.</param>
    /// <param name="pauseGossip">False keeps gossip running, so that nodes started later (<see cref="ReplaceAsync"/>) become known.</param>
    public static async Task<BenchCluster> StartAsync(int count, TimeSpan formTimeout, CancellationToken cancellationToken,
        IReadOnlyDictionary<string, string?>? overrides = null, bool pauseGossip = true)
    {
        var root = Directory.CreateTempSubdirectory("overlay-bench-");
        var nodes = new List<OverlayNode>();
        var cluster = new BenchCluster(root, nodes, overrides);
        try
        {
            var seed = cluster.Create(seed: null);
            nodes.Add(seed);
            await seed.StartAsync(cancellationToken);
            var others = Enumerable.Range(1, count - 1).Select(_ => cluster.Create(seed.LinkEndpoint.ToString())).ToList();
            nodes.AddRange(others);
            await Task.WhenAll(others.Select(n => n.StartAsync(cancellationToken)));

            using var form = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            form.CancelAfter(formTimeout);
            foreach (var node in nodes)
            {
                while (node.Directory.UpCount < count - 1)
                {
                    // Take the signal before checking again, so a change in between is not missed.
                    var changed = node.Directory.WaitForChangeAsync(form.Token);
                    if (node.Directory.UpCount < count - 1)
                    {
                        await changed;
                    }
                }
            }

            if (pauseGossip)
            {
                await Task.WhenAll(nodes.Select(n => n.Services.GetRequiredService<DirectoryService>().StopAsync(cancellationToken)));
            }

            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>Kills node <paramref name="index"/> as a crash looks (its peers are not told); returns its identity.</summary>
    public async Task<NodeId> KillAsync(int index)
    {
        var killed = _nodes[index];
        var id = killed.Id;
        await killed.KillAsync();
        await killed.DisposeAsync();
        return id;
    }

    /// <summary>
    /// Starts a new node, with a new identity and data directory, in the place of killed node
    /// <paramref name="index"/>; it joins from node 0. Returns it.
    /// </summary>
    public async Task<OverlayNode> ReplaceAsync(int index, CancellationToken cancellationToken)
    {
        var replacement = Create(_nodes[0].LinkEndpoint.ToString());
        _nodes[index] = replacement;
        await replacement.StartAsync(cancellationToken);
        return replacement;
    }

    public Uri Endpoint(int index) => Nodes[index].LinkEndpoint;

    public NodeId Id(int index) => Nodes[index].Id;

    /// <summary>The plain chain's client channels of node <paramref name="index"/>.</summary>
    public ChainChannels Chain(int index) => Nodes[index].Services.GetRequiredService<ChainChannels>();

    public async ValueTask DisposeAsync()
    {
        await Task.WhenAll(Nodes.Select(async n =>
        {
            await n.KillAsync();
            await n.DisposeAsync();
        }));
        try
        {
            _root.Delete(recursive: true);
        }
        catch (IOException)
        {
            // A temporary directory left behind is harmless.
        }
    }

    private OverlayNode Create(string? seed)
    {
        var configuration = new Dictionary<string, string?>(SharedConfiguration)
        {
            ["Overlay:DataDirectory"] = Path.Combine(_root.FullName, "node" + (Interlocked.Increment(ref _created) - 1).ToString(CultureInfo.InvariantCulture)),
        };
        foreach (var (key, value) in _overrides ?? new Dictionary<string, string?>())
        {
            configuration[key] = value;
        }

        if (seed is not null)
        {
            configuration["Overlay:Directory:Seeds:0"] = seed;
        }

        return OverlayNode.Create(new OverlayNodeSettings
        {
            Configuration = configuration,
            ConfigureServices = services =>
            {
                services.AddSingleton<ChainChannels>();
                services.AddSingleton<ChainService>();
            },
            ConfigureApplication = app => app.MapGrpcService<ChainService>(),
        });
    }
}
