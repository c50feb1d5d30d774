using System.Diagnostics;
using System.Globalization;
using System.Net;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;
using Overlay.Host.Link.Tls;
using Overlay.Protocol.V1;

namespace Overlay.Host.Cli;

/// <summary>The <c>health</c> verb's command line.</summary>
public sealed record HealthOptions
{
    /// <summary>Link URLs of the nodes to check (at least one).</summary>
    public IReadOnlyList<Uri> Urls { get; init; } = [];

    /// <summary>Up peers each node must list (0 = only SERVING is required).</summary>
    public int Peers { get; init; }

    /// <summary>How long to keep trying.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Parses <c>--url URL [--url URL ...] [--peers P] [--timeout SECONDS]</c>.</summary>
    public static bool TryParse(IReadOnlyList<string> args, out HealthOptions options, out string? problem)
    {
        options = new HealthOptions();
        var urls = new List<Uri>();
        for (var i = 0; i < args.Count; i += 2)
        {
            var value = i + 1 < args.Count ? args[i + 1] : null;
            switch (args[i])
            {
                case "--url" when Uri.TryCreate(value, UriKind.Absolute, out var url) && url.Scheme is "http" or "https":
                    urls.Add(url);
                    break;
                case "--peers" when int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var peers):
                    options = options with { Peers = peers };
                    break;
                case "--timeout" when double.TryParse(value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var seconds) && seconds is > 0 and <= 86_400:
                    options = options with { Timeout = TimeSpan.FromSeconds(seconds) };
                    break;
                default:
                    problem = $"bad or unknown argument '{args[i]}{(value is null ? "" : " " + value)}'";
                    return false;
            }
        }

        options = options with { Urls = urls };
        problem = urls.Count == 0 ? "--url URL is required" : null;
        return problem is null;
    }
}

/// <summary>
/// Waits until nodes are ready: each answers SERVING on the standard gRPC health service
/// (<c>grpc.health.v1.Health/Check</c>, SERVING once the node has published its descriptor) and,
/// with <c>--peers P</c>, lists at least P up peers when asked for a directory exchange (an
/// exchange that offers nothing, so the node learns nothing from it). A node lists at most
/// Overlay:Directory:MaxDescriptorsPerExchange peers (default 64). An <c>https</c> URL is a TLS link
/// endpoint, which admits only nodes: the check presents a throwaway node identity's certificate and
/// accepts any node's; an <c>http</c> URL may be the plaintext health-only port (no <c>--peers</c> there).
/// </summary>
public static class HealthCommand
{
    /// <summary>Every node is ready.</summary>
    public const int Ready = 0;

    /// <summary>Bad arguments.</summary>
    public const int UsageError = 2;

    /// <summary>A node was not ready within the timeout.</summary>
    public const int NotReady = 3;

    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan RetryDelay = TimeSpan.FromMilliseconds(200);

    /// <summary>Checks every node concurrently; returns the process exit code.</summary>
    public static async Task<int> RunAsync(HealthOptions options, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(options.Timeout);
        var results = await Task.WhenAll(options.Urls.Select(url => WaitReadyAsync(url, options.Peers, deadline.Token)));
        cancellationToken.ThrowIfCancellationRequested();
        var ready = true;
        for (var i = 0; i < results.Length; i++)
        {
            var (ok, state) = results[i];
            ready &= ok;
            (ok ? output : error).WriteLine(ok
                ? $"health: {options.Urls[i].OriginalString} {state}"
                : string.Create(CultureInfo.InvariantCulture, $"health: {options.Urls[i].OriginalString} not ready after {clock.Elapsed.TotalSeconds:F1} s: {state}"));
        }

        return ready ? Ready : NotReady;
    }

    private static async Task<(bool Ready, string State)> WaitReadyAsync(Uri url, int peers, CancellationToken cancellationToken)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = CallTimeout,
            UseProxy = false,
            AutomaticDecompression = DecompressionMethods.None,
            ActivityHeadersPropagator = null,
        };
        // A TLS link endpoint admits only nodes: this check presents a throwaway node identity, and
        // accepts any node's valid certificate (the URL names no node id).
        using var credential = url.Scheme == Uri.UriSchemeHttps ? EphemeralLinkCredential.Create() : null;
        if (credential is not null)
        {
            handler.SslOptions = LinkTls.Client(() => credential.Certificate, credential.AcceptsAnyNode);
        }

        using var channel = GrpcChannel.ForAddress(url, new GrpcChannelOptions { HttpHandler = handler, DisposeHttpClient = true });
        var health = new Health.HealthClient(channel);
        var link = new Protocol.V1.Link.LinkClient(channel);
        var state = "no answer yet";
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                var status = await health.CheckAsync(new HealthCheckRequest(), deadline: DateTime.UtcNow + CallTimeout, cancellationToken: cancellationToken);
                if (status.Status != HealthCheckResponse.Types.ServingStatus.Serving)
                {
                    state = $"health status {status.Status}";
                }
                else if (peers == 0)
                {
                    return (true, "serving");
                }
                else
                {
                    var exchange = await link.ExchangeAsync(new DescriptorExchange(), deadline: DateTime.UtcNow + CallTimeout, cancellationToken: cancellationToken);
                    state = string.Create(CultureInfo.InvariantCulture, $"serving, {exchange.Known.Count} peers up");
                    if (exchange.Known.Count >= peers)
                    {
                        return (true, state);
                    }

                    state += string.Create(CultureInfo.InvariantCulture, $" (waiting for {peers})");
                }
            }
            catch (RpcException exception) when (!cancellationToken.IsCancellationRequested)
            {
                state = $"{exception.StatusCode}: {exception.Status.Detail}";
            }
            catch (RpcException) when (cancellationToken.IsCancellationRequested)
            {
                break;
            }

            try
            {
                await Task.Delay(RetryDelay, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }

        return (false, state);
    }
}
