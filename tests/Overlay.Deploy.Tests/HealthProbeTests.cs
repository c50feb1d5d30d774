using System.Globalization;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;
using Overlay.Host;
using Overlay.Protocol.V1;

namespace Overlay.Deploy.Tests;

/// <summary>
/// Everything that checks a node's health keeps working with TLS links: the <c>health</c> verb
/// (compose's health check, deploy/local's readiness wait) against the TLS link endpoint, and the
/// plaintext health-only port for the kubelet's gRPC probe, which cannot speak TLS.
/// </summary>
public sealed class HealthProbeTests(ITestOutputHelper log) : IAsyncLifetime
{
    private readonly DirectoryInfo _data = Directory.CreateTempSubdirectory("overlay-health-");
    private OverlayNode _node = null!;

    private Uri LinkUrl => _node.LinkEndpoint;

    private Uri HealthUrl => _node.Health.Url ?? throw new InvalidOperationException("no health listener");

    public async Task InitializeAsync()
    {
        _node = OverlayNode.Create(new OverlayNodeSettings
        {
            Configuration = new Dictionary<string, string?>
            {
                ["Overlay:Link:Url"] = "https://127.0.0.1:0",
                ["Overlay:Link:HealthUrl"] = "http://127.0.0.1:0",
                ["Overlay:Control:Url"] = "http://127.0.0.1:0",
                ["Overlay:DataDirectory"] = _data.FullName,
            },
        });
        using var start = TestTimeouts.After(30);
        await _node.StartAsync(start.Token);
    }

    public async Task DisposeAsync()
    {
        await _node.KillAsync();
        await _node.DisposeAsync();
        _data.Delete(recursive: true);
    }

    [Fact]
    public async Task The_health_verb_checks_the_TLS_link_endpoint_as_compose_and_deploy_local_do()
    {
        Assert.Equal(Uri.UriSchemeHttps, LinkUrl.Scheme);

        var result = await RunHostAsync("health", "--url", LinkUrl.ToString(), "--peers", "0", "--timeout", "20");

        Assert.Equal(0, result.ExitCode);
        Assert.Contains($"health: {LinkUrl} serving", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_health_verb_and_a_plaintext_gRPC_probe_read_the_health_only_port()
    {
        var result = await RunHostAsync("health", "--url", HealthUrl.ToString(), "--timeout", "20");
        Assert.Equal(0, result.ExitCode);

        // What the kubelet does: grpc.health.v1.Health/Check over h2c, no TLS.
        using var channel = GrpcChannel.ForAddress(HealthUrl, new GrpcChannelOptions { HttpHandler = new SocketsHttpHandler { UseProxy = false } });
        using var deadline = TestTimeouts.After(10);
        var status = await new Health.HealthClient(channel).CheckAsync(new HealthCheckRequest(), cancellationToken: deadline.Token);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, status.Status);
    }

    [Fact]
    public async Task The_health_only_port_serves_nothing_but_Check()
    {
        using var channel = GrpcChannel.ForAddress(HealthUrl, new GrpcChannelOptions { HttpHandler = new SocketsHttpHandler { UseProxy = false } });
        using var deadline = TestTimeouts.After(10);

        var exchange = await Assert.ThrowsAsync<RpcException>(() => new Link.LinkClient(channel).ExchangeAsync(new DescriptorExchange(), cancellationToken: deadline.Token).ResponseAsync);
        Assert.Equal(StatusCode.Unimplemented, exchange.StatusCode);

        using var watch = new Health.HealthClient(channel).Watch(new HealthCheckRequest(), cancellationToken: deadline.Token);
        var watching = await Assert.ThrowsAsync<RpcException>(() => watch.ResponseStream.MoveNext(deadline.Token));
        Assert.Equal(StatusCode.Unimplemented, watching.StatusCode);
    }

    [Fact]
    public async Task The_TLS_link_endpoint_speaks_no_cleartext()
    {
        var cleartext = new UriBuilder(LinkUrl) { Scheme = Uri.UriSchemeHttp }.Uri;

        var result = await RunHostAsync("health", "--url", cleartext.ToString(), "--timeout", "2");

        Assert.Equal(3, result.ExitCode);
        Assert.Contains("not ready", result.Output, StringComparison.Ordinal);
    }

    private Task<ProcessResult> RunHostAsync(params string[] arguments)
    {
        log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Overlay.Host {string.Join(' ', arguments)}"));
        return Processes.RunAsync(Processes.Dotnet, [Repo.BuiltHostDll, .. arguments], TestTimeouts.Seconds(60), log: log);
    }
}
