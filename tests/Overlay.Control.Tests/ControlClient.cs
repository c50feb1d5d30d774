using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using V1 = Overlay.Protocol.Control.V1;

namespace Overlay.Control.Tests;

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
