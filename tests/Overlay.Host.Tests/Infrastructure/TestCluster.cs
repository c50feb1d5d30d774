using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Overlay.Host.Directory;
using Overlay.Host.Tunnels;
using Overlay.Identity;

namespace Overlay.Host.Tests.Infrastructure;

/// <summary>How a <see cref="TestCluster"/> configures its nodes.</summary>
internal sealed record ClusterOptions
{
    /// <summary>Gossip period of every node: fast, so the directory converges in about a second.</summary>
    public TimeSpan GossipInterval { get; init; } = TimeSpan.FromMilliseconds(150);

    /// <summary>Extra configuration for every node (keys of the <c>Overlay</c> section, e.g. <c>Overlay:Link:StreamWindowBytes</c>).</summary>
    public IReadOnlyDictionary<string, string?> Configuration { get; init; } = new Dictionary<string, string?>();

    /// <summary>Destinations run the node's own default handler (echo) instead of <see cref="TestCluster.Handler"/>.</summary>
    public bool NodeDefaultHandler { get; init; }
}

/// <summary>One node of a <see cref="TestCluster"/>: the running <see cref="OverlayNode"/> and what it was built from.</summary>
internal sealed class ClusterNode
{
    internal ClusterNode(int index, string dataDirectory, IReadOnlyDictionary<string, string?> configuration, OverlayNode node)
    {
        Index = index;
        DataDirectory = dataDirectory;
        Configuration = configuration;
        Node = node;
    }

    public int Index { get; }

    public string Name => string.Create(CultureInfo.InvariantCulture, $"node{Index}");

    /// <summary>The node's own data directory (identity, onion-key state), removed with the cluster.</summary>
    public string DataDirectory { get; }

    /// <summary>The configuration the node was built with.</summary>
    public IReadOnlyDictionary<string, string?> Configuration { get; }

    /// <summary>The current incarnation (a restart builds a new one on the same data directory).</summary>
    public OverlayNode Node { get; internal set; }

    /// <summary>False once stopped or killed.</summary>
    public bool Running { get; internal set; }

    public NodeId Id { get; internal set; }

    public Uri LinkEndpoint { get; internal set; } = null!;

    public PeerDirectory Directory => Node.Directory;

    public TunnelClient Tunnels => Node.Tunnels;

    public TunnelRegistry Registry => Node.Registry;

    public NodeDescriptor Descriptor => Node.State.Descriptor ?? throw new InvalidOperationException($"{Name} has no descriptor");

    public override string ToString() => $"{Name} ({Id.ToShortString()})";
}

/// <summary>
/// N real nodes in this process, each built by <see cref="OverlayNode.Create"/> on real Kestrel
/// (loopback, port 0), with its own temporary data directory, fast gossip, node 0 as the seed,
/// logs collected in <see cref="Logs"/> and incoming request headers recorded by <see cref="Headers"/>.
/// </summary>
internal sealed class TestCluster : IAsyncDisposable
{
    private readonly List<ClusterNode> _nodes = [];
    private readonly DirectoryInfo _root;
    private readonly ClusterOptions _options;
    private int _disposed;

    private TestCluster(ClusterOptions options)
    {
        _options = options;
        _root = System.IO.Directory.CreateTempSubdirectory("overlay-host-tests-");
    }

    public TestLogSink Logs { get; } = new();

    public HeaderRecorder Headers { get; } = new();

    /// <summary>Request messages per incoming tunnel hop, per node (off until enabled).</summary>
    public LinkMessageCounter LinkMessages { get; } = new();

    /// <summary>What each node does wrong on its incoming tunnel hops (nothing unless a test says so).</summary>
    public Misbehaviours Misbehaviours { get; } = new();

    /// <summary>The destination handler of every node (echo, with optional stalls).</summary>
    public ControlledTunnelHandler Handler { get; } = new();

    public IReadOnlyList<ClusterNode> Nodes => _nodes;

    public IEnumerable<ClusterNode> Running => _nodes.Where(n => n.Running);

    public ClusterNode this[int index] => _nodes[index];

    public Uri SeedEndpoint => _nodes[0].LinkEndpoint;

    /// <summary>Starts <paramref name="count"/> nodes and waits until every node sees every other up.</summary>
    public static async Task<TestCluster> StartAsync(int count, ClusterOptions? options = null, double formSeconds = 30)
    {
        var cluster = new TestCluster(options ?? new ClusterOptions());
        try
        {
            var seed = cluster.Build(0, extra: null, port: 0);
            await cluster.StartNodeAsync(seed);
            var others = Enumerable.Range(1, count - 1).Select(i => cluster.Build(i, extra: null, port: 0)).ToList();
            await Task.WhenAll(others.Select(cluster.StartNodeAsync));
            using var form = TestTimeouts.After(formSeconds);
            await cluster.WaitForMeshAsync(form.Token);
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>Builds and starts one more node that joins through the seed (node 0).</summary>
    public async Task<ClusterNode> AddNodeAsync(IReadOnlyDictionary<string, string?>? extra = null)
    {
        var node = Build(_nodes.Count, extra, port: 0);
        await StartNodeAsync(node);
        return node;
    }

    /// <summary>Stops a node at once, aborting its connections, as a crash looks to its peers.</summary>
    public async Task KillAsync(int index)
    {
        var node = _nodes[index];
        node.Running = false;
        await node.Node.KillAsync();
    }

    /// <summary>Stops a node gracefully (it saves its onion-key state).</summary>
    public async Task StopAsync(int index)
    {
        var node = _nodes[index];
        node.Running = false;
        await node.Node.StopAsync();
    }

    /// <summary>
    /// Builds a new incarnation of a stopped node on the same data directory and, if
    /// <paramref name="samePort"/>, the same link port, and starts it.
    /// </summary>
    public async Task<ClusterNode> RestartAsync(int index, bool samePort = true)
    {
        var node = _nodes[index];
        if (node.Running)
        {
            throw new InvalidOperationException($"{node.Name} is running; stop it first");
        }

        await node.Node.DisposeAsync();
        var port = samePort ? node.LinkEndpoint.Port : 0;
        node.Node = OverlayNode.Create(Settings(node.Name, WithPort(node.Configuration, port)));
        await StartNodeAsync(node);
        return node;
    }

    /// <summary>Waits until every running node sees every other running node up.</summary>
    public async Task WaitForMeshAsync(CancellationToken cancellationToken)
    {
        var running = Running.ToList();
        foreach (var node in running)
        {
            var others = running.Where(o => o != node).Select(o => o.Id).ToList();
            await WaitForDirectoryAsync(node, d => others.All(id => d.Find(id)?.Status == PeerStatus.Up),
                $"{node} sees all {others.Count} other nodes up", cancellationToken);
        }
    }

    /// <summary>Waits on <see cref="PeerDirectory.WaitForChangeAsync"/> until <paramref name="condition"/> holds.</summary>
    public static async Task WaitForDirectoryAsync(ClusterNode node, Func<PeerDirectory, bool> condition, string what, CancellationToken cancellationToken)
    {
        var directory = node.Directory;
        while (true)
        {
            // Take the signal before checking, so a change between the check and the wait is not missed.
            var changed = directory.WaitForChangeAsync(cancellationToken);
            if (condition(directory))
            {
                return;
            }

            try
            {
                await changed;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                var seen = string.Join(", ", directory.Peers.Select(p => $"{p.Descriptor.Id.ToShortString()}={p.Status}"));
                throw new TimeoutException($"timed out waiting until {what}; it sees: {seen}");
            }
        }
    }

    /// <summary>
    /// Waits until no running node has an open tunnel. The registry raises no event, so this polls
    /// briefly, bounded by the token.
    /// </summary>
    public async Task WaitForNoActiveTunnelsAsync(CancellationToken cancellationToken)
    {
        while (Running.Any(n => n.Registry.Active != 0))
        {
            try
            {
                await Task.Delay(20, cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                var busy = string.Join(", ", Running.Where(n => n.Registry.Active != 0).Select(n => $"{n.Name}: {n.Registry.Served} served, {n.Registry.Originated} originated"));
                throw new TimeoutException($"tunnels still open: {busy}");
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        // Kill rather than stop: a graceful stop would wait for stalled test tunnels.
        await Task.WhenAll(_nodes.Select(async node =>
        {
            try
            {
                if (node.Running)
                {
                    node.Running = false;
                    await node.Node.KillAsync();
                }

                await node.Node.DisposeAsync();
            }
            catch (Exception exception) when (exception is ObjectDisposedException or OperationCanceledException or InvalidOperationException)
            {
                // Already stopped or disposed by the test.
            }
        }));

        try
        {
            _root.Delete(recursive: true);
        }
        catch (IOException)
        {
            // A temp directory left behind is harmless.
        }
    }

    private ClusterNode Build(int index, IReadOnlyDictionary<string, string?>? extra, int port)
    {
        var name = string.Create(CultureInfo.InvariantCulture, $"node{index}");
        var dataDirectory = Path.Combine(_root.FullName, name);
        var configuration = new Dictionary<string, string?>(_options.Configuration)
        {
            ["Overlay:DataDirectory"] = dataDirectory,
            ["Overlay:Directory:GossipInterval"] = _options.GossipInterval.ToString("c", CultureInfo.InvariantCulture),
            // The tests read the node's Debug events (refused descriptors, failed proofs); appsettings.json stops at Information.
            ["Logging:LogLevel:Overlay"] = "Debug",
        };
        if (index > 0)
        {
            configuration["Overlay:Directory:Seeds:0"] = SeedEndpoint.ToString();
        }

        foreach (var (key, value) in extra ?? new Dictionary<string, string?>())
        {
            configuration[key] = value;
        }

        var node = new ClusterNode(index, dataDirectory, configuration, OverlayNode.Create(Settings(name, WithPort(configuration, port))));
        _nodes.Add(node);
        return node;
    }

    private async Task StartNodeAsync(ClusterNode node)
    {
        using var start = TestTimeouts.After(30);
        await node.Node.StartAsync(start.Token);
        node.Running = true;
        node.Id = node.Node.Id;
        node.LinkEndpoint = node.Node.LinkEndpoint;
    }

    private OverlayNodeSettings Settings(string name, IReadOnlyDictionary<string, string?> configuration) => new()
    {
        Configuration = configuration,
        ConfigureServices = services =>
        {
            if (!_options.NodeDefaultHandler)
            {
                services.AddSingleton<Tunnels.ITunnelHandler>(Handler);
            }

            services.Configure<Grpc.AspNetCore.Server.GrpcServiceOptions>(grpc => grpc.Interceptors.Add<LinkMessageInterceptor>(LinkMessages, name));
            services.Configure<Grpc.AspNetCore.Server.GrpcServiceOptions>(grpc => grpc.Interceptors.Add<MisbehavingLinkInterceptor>(Misbehaviours, name));
        },
        ConfigureApplication = app => Headers.Install(app, name),
        ConfigureLogging = logging =>
        {
            logging.ClearProviders();
            logging.AddProvider(Logs.CreateProvider(name));
            logging.SetMinimumLevel(LogLevel.Debug);
            logging.AddFilter("Microsoft", LogLevel.Warning);
            logging.AddFilter("System", LogLevel.Warning);
            logging.AddFilter("Grpc", LogLevel.Warning);
        },
    };

    private static Dictionary<string, string?> WithPort(IReadOnlyDictionary<string, string?> configuration, int port) =>
        new(configuration)
        {
            ["Overlay:Link:Url"] = string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{port}"),
        };
}
