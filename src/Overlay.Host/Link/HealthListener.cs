using System.Net;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Overlay.Host.Control;

namespace Overlay.Host.Link;

/// <summary>
/// The optional plaintext listener (<c>Overlay:Link:HealthUrl</c>) for probes that cannot speak TLS,
/// such as the kubelet's gRPC probe: h2c, and nothing but <c>grpc.health.v1.Health/Check</c>
/// (<see cref="ListenerScoping"/> answers anything else as an unknown service).
/// </summary>
public sealed class HealthListener
{
    private ListenOptions? _listen;

    /// <summary>The listener's URL once the node has started (port 0 resolved); null when not configured.</summary>
    public Uri? Url => _listen?.EndPoint is IPEndPoint bound
        ? new Uri($"http://{(bound.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{bound.Address}]" : bound.Address.ToString())}:{bound.Port}")
        : null;

    internal void Listen(KestrelServerOptions kestrel, string? healthUrl)
    {
        if (healthUrl is null)
        {
            return;
        }

        var url = new Uri(healthUrl);
        void Configure(ListenOptions listen)
        {
            _listen = listen;
            listen.Protocols = HttpProtocols.Http2;
            ListenerScoping.Tag(listen, ListenerRole.Health);
        }

        if (IPAddress.TryParse(url.Host.Trim('[', ']'), out var address))
        {
            kestrel.Listen(address, url.Port, Configure);
        }
        else if (url.IsLoopback)
        {
            kestrel.Listen(IPAddress.Loopback, url.Port, Configure);
        }
        else
        {
            kestrel.ListenAnyIP(url.Port, Configure);
        }
    }
}
