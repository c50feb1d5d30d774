using System.Globalization;
using Grpc.AspNetCore.Server;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Overlay.Host;
using Overlay.Host.Directory;
using Overlay.Host.Membership;
using Overlay.Host.Options;
using Overlay.Host.Tunnels;
using Overlay.Identity;
using Overlay.Membership;
using Overlay.Testing.Hooks;
using Overlay.Testing.Logging;

namespace Overlay.Testing.Cluster;

/// <summary>
/// N real nodes in this process, each built by <see cref="OverlayNode.Create"/> on real Kestrel
/// (loopback, port 0), with its own temporary data directory, fast gossip and node 0 as the seed.
/// By default the logs are collected in <see cref="Logs"/> and the test hooks are installed
/// (<see cref="ClusterOptions.TestHooks"/>); every caller's needs are options of this one builder.
/// </summary>
internal sealed class TestCluster : IAsyncDisposable
{
    /// <summary>The application token every node accepts with <see cref="ClusterOptions.ControlEndpoints"/>.</summary>
    public const string ApplicationToken = "application-token-for-tests-0123456789";

    private readonly List<ClusterNode> _nodes = [];
    private readonly DirectoryInfo _root;
    private readonly ClusterOptions _options;
    private IReadOnlyList<string> _members = [];
    private int _created;
    private int _disposed;

    private TestCluster(ClusterOptions options)
    {
        _options = options;
        _root = System.IO.Directory.CreateTempSubdirectory("overlay-tests-");
    }

    public TestLogSink Logs { get; } = new();

    /// <summary>Incoming request headers, per node (off until enabled).</summary>
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

    /// <summary>The node with identity <paramref name="id"/>.</summary>
    public ClusterNode this[NodeId id] => _nodes.Single(n => n.Id == id);

    public Uri SeedEndpoint => _nodes[0].LinkEndpoint;

    /// <summary>The file holding <see cref="ApplicationToken"/> (with <see cref="ClusterOptions.ControlEndpoints"/>).</summary>
    public string ApplicationTokenFile => Path.Combine(_root.FullName, "application.token");

    /// <summary>
    /// Starts <paramref name="count"/> nodes and waits, at most <paramref name="formSeconds"/> (scaled),
    /// until every node sees every other up.
    /// </summary>
    public static async Task<TestCluster> StartAsync(int count, ClusterOptions? options = null, double formSeconds = 30,
        CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        var cluster = new TestCluster(options ?? new ClusterOptions());
        try
        {
            await cluster.PrepareAsync(count);
            var seed = cluster.Build(0, extra: null, port: 0);
            await cluster.StartNodeAsync(seed, cancellationToken);
            var others = Enumerable.Range(1, count - 1).Select(i => cluster.Build(i, extra: null, port: 0)).ToList();
            await Task.WhenAll(others.Select(node => cluster.StartNodeAsync(node, cancellationToken)));
            using (var form = TestTimeouts.After(formSeconds, cancellationToken))
            {
                await cluster.WaitForMeshAsync(form.Token);
            }

            if (cluster._options.PauseGossipOnceFormed)
            {
                await Task.WhenAll(cluster._nodes.Select(n => n.Services.GetRequiredService<DirectoryService>().StopAsync(cancellationToken)));
            }

            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>Builds and starts one more node that joins through the seed (node 0).</summary>
    public async Task<ClusterNode> AddNodeAsync(IReadOnlyDictionary<string, string?>? extra = null, CancellationToken cancellationToken = default)
    {
        var node = Build(_nodes.Count, extra, port: 0);
        await StartNodeAsync(node, cancellationToken);
        return node;
    }

    /// <summary>Stops a node at once, aborting its connections, as a crash looks to its peers; returns its identity.</summary>
    public async Task<NodeId> KillAsync(int index)
    {
        var node = _nodes[index];
        node.Running = false;
        await node.Node.KillAsync();
        return node.Id;
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
    public async Task<ClusterNode> RestartAsync(int index, bool samePort = true, CancellationToken cancellationToken = default)
    {
        var node = _nodes[index];
        if (node.Running)
        {
            throw new InvalidOperationException($"{node.Name} is running; stop it first");
        }

        await node.Node.DisposeAsync();
        var port = samePort ? node.LinkEndpoint.Port : 0;
        node.Node = OverlayNode.Create(Settings(node.Index, node.Name, WithPort(node.Configuration, port)));
        await StartNodeAsync(node, cancellationToken);
        return node;
    }

    /// <summary>
    /// Starts a new node, with a new identity and data directory, in the place of the stopped or
    /// killed node at <paramref name="index"/>; it joins from node 0. The old one is disposed.
    /// </summary>
    public async Task<ClusterNode> ReplaceAsync(int index, CancellationToken cancellationToken = default)
    {
        var old = _nodes[index];
        if (old.Running)
        {
            throw new InvalidOperationException($"{old.Name} is running; stop or kill it first");
        }

        await old.Node.DisposeAsync();
        var replacement = Build(index, extra: null, port: 0);
        await StartNodeAsync(replacement, cancellationToken);
        return replacement;
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

    // What exists before the first node starts: the application token file, the allowed identities.
    private async Task PrepareAsync(int count)
    {
        if (_options.ControlEndpoints)
        {
            await File.WriteAllTextAsync(ApplicationTokenFile, ApplicationToken + "\n");
            if (!OperatingSystem.IsWindows())
            {
                // As a mounted secret often is: owner and group.
                File.SetUnixFileMode(ApplicationTokenFile, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead);
            }
        }

        if (_options.AllowList)
        {
            // The node ids are known before any node starts: each node's identity is created in its data directory now.
            var members = new List<string>();
            for (var i = 0; i < count; i++)
            {
                using var identity = NodeIdentity.LoadOrCreate(DataDirectoryOf(NameOf(i)));
                members.Add(identity.Id.ToString());
            }

            _members = members;
        }
    }

    private static string NameOf(int serial) => string.Create(CultureInfo.InvariantCulture, $"node{serial}");

    private string DataDirectoryOf(string name) => Path.Combine(_root.FullName, name);

    // Builds the node at index (a new one at the end, or a replacement); its name and data directory are new either way.
    private ClusterNode Build(int index, IReadOnlyDictionary<string, string?>? extra, int port)
    {
        var name = NameOf(_created++);
        var dataDirectory = DataDirectoryOf(name);
        var defaults = new Dictionary<string, string?>
        {
            ["Overlay:Directory:GossipInterval"] = _options.GossipInterval.ToString("c", CultureInfo.InvariantCulture),
        };
        if (_options.CaptureLogs)
        {
            // appsettings.json stops at Information; the sink takes what the test asked for.
            defaults["Logging:LogLevel:Overlay"] = _options.LogLevel.ToString();
        }

        // The caller's configuration wins over the cluster's defaults above, not over what makes the node a member below.
        foreach (var (key, value) in _options.Configuration)
        {
            defaults[key] = value;
        }

        var configuration = SingleHostNetwork.With(defaults);
        configuration["Overlay:DataDirectory"] = dataDirectory;
        if (index > 0)
        {
            configuration["Overlay:Directory:Seeds:0"] = SeedEndpoint.ToString();
        }

        if (_options.ControlEndpoints)
        {
            configuration["Overlay:Control:Url"] = "http://127.0.0.1:0";
            configuration["Overlay:Control:ApplicationTokenFile"] = ApplicationTokenFile;
        }

        if (_options.Authority is { } authority)
        {
            configuration["Overlay:Network:Authorities:0"] = authority.Id.ToString();
        }

        for (var member = 0; member < _members.Count; member++)
        {
            configuration[string.Create(CultureInfo.InvariantCulture, $"Overlay:Directory:AllowedNodeIds:{member}")] = _members[member];
        }

        _options.ConfigureNode?.Invoke(index, configuration);
        foreach (var (key, value) in extra ?? new Dictionary<string, string?>())
        {
            configuration[key] = value;
        }

        var node = new ClusterNode(index, name, dataDirectory, configuration, OverlayNode.Create(Settings(index, name, WithPort(configuration, port))));
        if (index == _nodes.Count)
        {
            _nodes.Add(node);
        }
        else
        {
            _nodes[index] = node;
        }

        return node;
    }

    private async Task StartNodeAsync(ClusterNode node, CancellationToken cancellationToken)
    {
        using var start = TestTimeouts.After(30, cancellationToken);
        await node.Node.StartAsync(start.Token);
        node.Running = true;
        node.Id = node.Node.Id;
        node.LinkEndpoint = node.Node.LinkEndpoint;
        if (_options.Authority is not null && _options.Admit(node.Index))
        {
            Admit(node);
        }
    }

    /// <summary>
    /// Gives <paramref name="node"/> a membership signed by <see cref="ClusterOptions.Authority"/>,
    /// valid from an hour ago for <paramref name="lifetime"/> (default a day) from now.
    /// </summary>
    public NodeMembership Admit(ClusterNode node, TimeSpan? lifetime = null)
    {
        var authority = _options.Authority ?? throw new InvalidOperationException("the cluster has no authority");
        var now = DateTimeOffset.UtcNow;
        var membership = NodeMembership.Issue(authority, node.Id, node.LinkEndpoint, now.AddHours(-1), now + (lifetime ?? TimeSpan.FromDays(1)));
        var error = node.Services.GetRequiredService<MembershipBook>().SetOwn(membership.Encoded.Span);
        return error == MembershipError.None ? membership : throw new InvalidOperationException($"{node}: {error.Describe()}");
    }

    private OverlayNodeSettings Settings(int index, string name, IReadOnlyDictionary<string, string?> configuration) => new()
    {
        Configuration = configuration,
        ConfigureServices = services =>
        {
            if (_options.TestHooks)
            {
                if (!_options.NodeDefaultHandler)
                {
                    services.AddSingleton<ITunnelHandler>(Handler);
                }

                services.Configure<GrpcServiceOptions>(grpc => grpc.Interceptors.Add<LinkMessageInterceptor>(LinkMessages, name));
                services.Configure<GrpcServiceOptions>(grpc => grpc.Interceptors.Add<MisbehavingLinkInterceptor>(Misbehaviours, name));
            }

            _options.ConfigureServices?.Invoke(index, services);
        },
        ConfigureApplication = app =>
        {
            if (_options.TestHooks)
            {
                Headers.Install(app, name);
            }

            _options.ConfigureApplication?.Invoke(index, app);
        },
        ConfigureLogging = _options.CaptureLogs ? logging =>
        {
            logging.ClearProviders();
            logging.AddProvider(Logs.CreateProvider(name));
            logging.SetMinimumLevel(_options.LogLevel);
            logging.AddFilter("Microsoft", LogLevel.Warning);
            logging.AddFilter("System", LogLevel.Warning);
            logging.AddFilter("Grpc", LogLevel.Warning);
        } : null,
    };

    // TLS links, as a node runs by default, unless the configuration names an http link URL (a test of h2c).
    private static Dictionary<string, string?> WithPort(IReadOnlyDictionary<string, string?> configuration, int port)
    {
        var scheme = configuration.TryGetValue("Overlay:Link:Url", out var url) && url is not null && url.StartsWith("http://", StringComparison.OrdinalIgnoreCase)
            ? Uri.UriSchemeHttp
            : Uri.UriSchemeHttps;
        var withPort = new Dictionary<string, string?>(configuration)
        {
            ["Overlay:Link:Url"] = string.Create(CultureInfo.InvariantCulture, $"{scheme}://127.0.0.1:{port}"),
        };

        // A node restarted on its fixed link port would otherwise take the default control port (7401), which
        // another node or process may hold: the cluster's control endpoints always pick a free port.
        withPort.TryAdd("Overlay:Control:Url", "http://127.0.0.1:0");
        return withPort;
    }
}
