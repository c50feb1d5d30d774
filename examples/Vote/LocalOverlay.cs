using System.Globalization;
using System.Security.Cryptography;
using Microsoft.Extensions.DependencyInjection;
using Overlay.Client;
using Overlay.Host;
using Overlay.Host.Options;

namespace Overlay.Examples.Vote;

/// <summary>
/// A devnet for the vote: real nodes on loopback in this process, each serving its control API,
/// where the board is an application owning the board's service on node 0 and the voters are
/// applications of the other nodes. Everything the vote does goes through the control API, as a
/// deployed application's would.
/// </summary>
internal sealed class LocalOverlay : IAsyncDisposable
{
    public const string BoardApplication = "vote-board";

    private readonly DirectoryInfo _root;
    private readonly List<OverlayNode> _nodes = [];
    private readonly List<ServiceProvider> _clients = [];
    private readonly string _applicationToken = Convert.ToHexString(RandomNumberGenerator.GetBytes(32));
    private readonly string _boardToken = Convert.ToHexString(RandomNumberGenerator.GetBytes(32));

    private LocalOverlay(DirectoryInfo root) => _root = root;

    public IReadOnlyList<OverlayNode> Nodes => _nodes;

    /// <summary>Starts <paramref name="count"/> nodes from one seed and waits until each knows all the others.</summary>
    public static async Task<LocalOverlay> StartAsync(int count, int maxRelays, CancellationToken cancellationToken)
    {
        var overlay = new LocalOverlay(Directory.CreateTempSubdirectory("overlay-vote-"));
        try
        {
            var secrets = overlay._root.CreateSubdirectory("secrets");
            var applicationTokenFile = Path.Combine(secrets.FullName, "application.token");
            var boardTokenFile = Path.Combine(secrets.FullName, "board.token");
            await WriteSecretAsync(applicationTokenFile, overlay._applicationToken, cancellationToken);
            await WriteSecretAsync(boardTokenFile, overlay._boardToken, cancellationToken);
            for (var i = 0; i < count; i++)
            {
                var configuration = new Dictionary<string, string?>
                {
                    ["Overlay:DataDirectory"] = Path.Combine(overlay._root.FullName, $"node{i}"),
                    ["Overlay:Link:Url"] = "https://127.0.0.1:0",
                    ["Overlay:Network:MaxRelays"] = maxRelays.ToString(CultureInfo.InvariantCulture),
                    ["Overlay:Directory:GossipInterval"] = "00:00:00.250",
                    ["Overlay:Control:Url"] = "http://127.0.0.1:0",
                    ["Overlay:Control:ApplicationTokenFile"] = applicationTokenFile,
                    [$"Overlay:Control:Applications:{BoardApplication}:TokenFile"] = boardTokenFile,
                    [$"Overlay:Control:Services:{BulletinBoard.Service}:Owner"] = BoardApplication,
                    ["Logging:LogLevel:Default"] = "Warning",
                };
                if (i > 0)
                {
                    configuration["Overlay:Directory:Seeds:0"] = overlay._nodes[0].LinkEndpoint.ToString();
                }

                var node = OverlayNode.Create(new OverlayNodeSettings { Configuration = SingleHostNetwork.With(configuration) });
                overlay._nodes.Add(node);
                await node.StartAsync(cancellationToken);
            }

            foreach (var node in overlay._nodes)
            {
                await node.Directory.WaitUntilAsync(d => d.UpCount >= count - 1, cancellationToken);
            }

            return overlay;
        }
        catch
        {
            await overlay.DisposeAsync();
            throw;
        }
    }

    /// <summary>The board application's client of node 0's control API.</summary>
    public OverlayClient BoardClient() => Client(0, _boardToken);

    /// <summary>A voter application's client of node <paramref name="index"/>'s control API.</summary>
    public OverlayClient VoterClient(int index) => Client(index, _applicationToken);

    public async ValueTask DisposeAsync()
    {
        foreach (var client in _clients)
        {
            await client.DisposeAsync();
        }

        await Task.WhenAll(_nodes.Select(async node =>
        {
            await node.StopAsync(CancellationToken.None);
            await node.DisposeAsync();
        }));
        _root.Delete(recursive: true);
    }

    // A token file only its owner can read, as the node requires.
    private static async Task WriteSecretAsync(string path, string secret, CancellationToken cancellationToken)
    {
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        await using var file = new StreamWriter(path, System.Text.Encoding.ASCII, options);
        await file.WriteAsync(secret.AsMemory(), cancellationToken);
    }

    private OverlayClient Client(int index, string token)
    {
        var services = new ServiceCollection();
        services.AddOverlayClient(options =>
        {
            options.Endpoint = _nodes[index].Control.Url;
            options.Token = token;
        });
        var provider = services.BuildServiceProvider();
        _clients.Add(provider);
        return provider.GetRequiredService<OverlayClient>();
    }
}
