using System.Net;
using Grpc.Net.Client;

namespace Overlay.Bench.Processes;

/// <summary>
/// The application's channel: to node 0's control API, or to the plain chain's first hop. One
/// builder for both, so that the application side of the two paths is the same.
/// </summary>
internal static class ApplicationChannel
{
    public static GrpcChannel Create(Uri endpoint) => GrpcChannel.ForAddress(endpoint, new GrpcChannelOptions
    {
        HttpHandler = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = true,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
            AutomaticDecompression = DecompressionMethods.None,
            UseProxy = false,
            ActivityHeadersPropagator = null,
        },
        DisposeHttpClient = true,
        MaxReceiveMessageSize = 4 * 1024 * 1024,
        MaxSendMessageSize = 4 * 1024 * 1024,
    });
}
