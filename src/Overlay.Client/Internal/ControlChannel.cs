using System.Security.Cryptography.X509Certificates;
using Grpc.Net.Client.Configuration;

namespace Overlay.Client.Internal;

/// <summary>The HTTP handler and gRPC channel settings of a control client, shared by every way of making one.</summary>
internal static class ControlChannel
{
    // Only calls that change nothing are retried, and only when the node could not be reached.
    // Send and OpenTunnel never are: a retried stream would send its bytes twice.
    private static readonly string[] Retried = ["GetInfo", "GetStats", "ListPeers", "ListTunnels"];

    public static SocketsHttpHandler Handler(OverlayClientOptions options)
    {
        var handler = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = true,
            UseProxy = false,
            KeepAlivePingDelay = TimeSpan.FromSeconds(30),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(20),
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests,
        };
        if (options.ClientCertificateFile is { } file)
        {
            handler.SslOptions.ClientCertificates = [LoadCertificate(file, options.ClientKeyFile)];
        }

        return handler;
    }

    public static ServiceConfig ServiceConfig()
    {
        var retried = new MethodConfig
        {
            RetryPolicy = new RetryPolicy
            {
                MaxAttempts = 3,
                InitialBackoff = TimeSpan.FromMilliseconds(200),
                MaxBackoff = TimeSpan.FromSeconds(2),
                BackoffMultiplier = 2,
                RetryableStatusCodes = { Grpc.Core.StatusCode.Unavailable },
            },
        };
        foreach (var method in Retried)
        {
            retried.Names.Add(new MethodName { Service = "overlay.v1.Control", Method = method });
        }

        return new ServiceConfig { MethodConfigs = { retried } };
    }

    private static X509Certificate2 LoadCertificate(string file, string? keyFile) =>
        file.EndsWith(".pfx", StringComparison.OrdinalIgnoreCase) || file.EndsWith(".p12", StringComparison.OrdinalIgnoreCase)
            ? X509CertificateLoader.LoadPkcs12FromFile(file, password: null)
            : X509Certificate2.CreateFromPemFile(file, keyFile);
}
