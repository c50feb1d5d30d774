using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using V1 = Overlay.Protocol.Control.V1;

namespace Overlay.Host.Tests.Infrastructure;

/// <summary>A control client with the node's operator token, disposing its channel with it.</summary>
internal sealed class ControlCall : V1.Control.ControlClient, IDisposable
{
    private readonly GrpcChannel _channel;

    public ControlCall(OverlayNode node)
        : this(GrpcChannel.ForAddress(node.Control.Url), File.ReadAllText(node.Control.TokenFile).Trim())
    {
    }

    private ControlCall(GrpcChannel channel, string token)
        : base(channel.Intercept(headers =>
        {
            headers.Add("authorization", $"Bearer {token}");
            return headers;
        }))
    {
        _channel = channel;
    }

    public void Dispose() => _channel.Dispose();
}
