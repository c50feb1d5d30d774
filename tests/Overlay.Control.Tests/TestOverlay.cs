using System.Globalization;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Overlay.Host;
using V1 = Overlay.Protocol.Control.V1;

[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace Overlay.Control.Tests;

/// <summary>Deadlines for tests, scaled by OVERLAY_TEST_TIMEOUT_SCALE on slow machines.</summary>
internal static class TestTime
{
    public static double Scale { get; } =
        double.TryParse(Environment.GetEnvironmentVariable("OVERLAY_TEST_TIMEOUT_SCALE"), NumberStyles.Float, CultureInfo.InvariantCulture, out var scale) && scale > 0 ? scale : 1;

    public static TimeSpan Of(double seconds) => TimeSpan.FromSeconds(seconds * Scale);

    public static CancellationTokenSource Deadline(double seconds = 30) => new(Of(seconds));
}

/// <summary>
/// A small overlay of real nodes (real Kestrel on loopback port 0, built by the node's own
/// builder), each with its control endpoint, joined from the first node.
/// </summary>
public sealed class TestOverlay : IAsyncDisposable
{
    private readonly DirectoryInfo _root;

    private TestOverlay(DirectoryInfo root, List<OverlayNode> nodes)
    {
        _root = root;
        Nodes = nodes;
    }

    public IReadOnlyList<OverlayNode> Nodes { get; }

    /// <summary>The application token every node accepts besides its generated operator token.</summary>
    public const string ApplicationToken = "application-token-for-tests-0123456789";

    public string ApplicationTokenFile => Path.Combine(_root.FullName, "application.token");

    public static async Task<TestOverlay> StartAsync(int count, Action<int, Dictionary<string, string?>>? configure = null,
        Action<int, IServiceCollection>? services = null)
    {
        var root = Directory.CreateTempSubdirectory("overlay-control-tests-");
        var applicationToken = Path.Combine(root.FullName, "application.token");
        await File.WriteAllTextAsync(applicationToken, ApplicationToken + "\n");
        if (!OperatingSystem.IsWindows())
        {
            // As a mounted secret often is: owner and group.
            File.SetUnixFileMode(applicationToken, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead);
        }

        var nodes = new List<OverlayNode>();
        var overlay = new TestOverlay(root, nodes);
        try
        {
            for (var i = 0; i < count; i++)
            {
                var configuration = new Dictionary<string, string?>
                {
                    ["Overlay:DataDirectory"] = Path.Combine(root.FullName, $"node{i}"),
                    ["Overlay:Link:Url"] = "http://127.0.0.1:0",
                    ["Overlay:Control:Url"] = "http://127.0.0.1:0",
                    ["Overlay:Control:ApplicationTokenFile"] = applicationToken,
                    ["Overlay:Directory:GossipInterval"] = "00:00:00.200",
                    ["Logging:LogLevel:Default"] = Environment.GetEnvironmentVariable("OVERLAY_TEST_DEBUG") == "1" ? "Debug" : "Warning",
                };
                if (i > 0)
                {
                    configuration["Overlay:Directory:Seeds:0"] = nodes[0].LinkEndpoint.ToString();
                }

                configure?.Invoke(i, configuration);
                var index = i;
                var node = OverlayNode.Create(new OverlayNodeSettings
                {
                    Configuration = configuration,
                    ConfigureServices = collection => services?.Invoke(index, collection),
                    ConfigureLogging = logging => logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning),
                });
                nodes.Add(node);
                await node.StartAsync();
            }

            using var form = TestTime.Deadline(30);
            foreach (var node in nodes)
            {
                await node.Directory.WaitUntilAsync(d => d.UpCount >= count - 1, form.Token);
            }

            return overlay;
        }
        catch
        {
            await overlay.DisposeAsync();
            throw;
        }
    }

    private readonly HashSet<int> _killed = [];

    /// <summary>Stops node <paramref name="node"/> at once, as a crash looks to its peers.</summary>
    public async Task KillAsync(int node)
    {
        _killed.Add(node);
        await Nodes[node].KillAsync();
    }

    public string OperatorToken(int node) => File.ReadAllText(Nodes[node].Control.TokenFile).Trim();

    /// <summary>A Control client for node <paramref name="node"/>, with the operator token unless told otherwise.</summary>
    public ControlClient Client(int node, string? token = null, bool noToken = false) =>
        new(Nodes[node].Control.Url, noToken ? null : token ?? OperatorToken(node));

    public async ValueTask DisposeAsync()
    {
        await Task.WhenAll(Nodes.Select(async (n, i) =>
        {
            if (!_killed.Contains(i))
            {
                await n.KillAsync();
            }

            await n.DisposeAsync();
        }));
        try
        {
            _root.Delete(recursive: true);
        }
        catch (IOException)
        {
            // A node may still hold a file for a moment; the temp directory is cleaned eventually.
        }
    }
}

/// <summary>A gRPC client of one node's control endpoint.</summary>
public sealed class ControlClient : IDisposable
{
    public ControlClient(Uri url, string? token)
    {
        Channel = GrpcChannel.ForAddress(url, new GrpcChannelOptions
        {
            HttpHandler = new SocketsHttpHandler { EnableMultipleHttp2Connections = true },
            MaxReceiveMessageSize = 16 * 1024 * 1024,
        });
        var invoker = token is null ? Channel.CreateCallInvoker() : Channel.Intercept(headers =>
        {
            headers.Add("authorization", $"Bearer {token}");
            return headers;
        });
        Api = new V1.Control.ControlClient(invoker);
    }

    public GrpcChannel Channel { get; }

    public V1.Control.ControlClient Api { get; }

    public void Dispose() => Channel.Dispose();
}

/// <summary>Shared by the tests that do not change the overlay: five nodes, A = 0 and B = 1.</summary>
public sealed class SharedOverlay : IAsyncLifetime
{
    public TestOverlay Overlay { get; private set; } = null!;

    public async Task InitializeAsync() => Overlay = await TestOverlay.StartAsync(5, (_, c) =>
    {
        c["Overlay:Control:EventsBufferSize"] = "32";
        c["Overlay:Control:MaxTunnelsPerClient"] = "8";
        c["Overlay:Control:AcceptTimeout"] = "00:00:05";
        c["Overlay:OnionKeys:MinEarlyRotationInterval"] = "00:00:00"; // RotateKeys rotates at once, however recently the node started
    });

    public async Task DisposeAsync() => await Overlay.DisposeAsync();
}

[CollectionDefinition(Name)]
public sealed class SharedOverlayCollection : ICollectionFixture<SharedOverlay>
{
    public const string Name = "shared overlay";
}

/// <summary>Helpers over RpcException.</summary>
internal static class Rpc
{
    public static string? Reason(this RpcException exception) => exception.Trailers.GetValue("overlay-reason");

    public static async Task<RpcException> ThrowsAsync(StatusCode code, Func<Task> call)
    {
        var exception = await Assert.ThrowsAsync<RpcException>(call);
        Assert.True(exception.StatusCode == code, $"expected {code}, got {exception.StatusCode}: {exception.Status.Detail}");
        return exception;
    }
}
