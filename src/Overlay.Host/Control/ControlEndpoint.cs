using System.Net;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;

namespace Overlay.Host.Control;

/// <summary>Where the control API listens, as bound, and where its operator token is.</summary>
public sealed class ControlEndpoint
{
    private ListenOptions? _listen;
    private Uri? _configured;

    /// <summary>The control endpoint's URL once the node has started (port 0 resolved).</summary>
    public Uri Url
    {
        get
        {
            if (_listen?.EndPoint is IPEndPoint bound && _configured is not null)
            {
                var host = bound.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{bound.Address}]" : bound.Address.ToString();
                return new Uri($"{_configured.Scheme}://{host}:{bound.Port}");
            }

            return _configured ?? throw new InvalidOperationException("the control endpoint is disabled");
        }
    }

    /// <summary>The file holding the operator token (generated at start unless configured).</summary>
    public string TokenFile { get; internal set; } = "";

    /// <summary>When the node started.</summary>
    public DateTimeOffset StartedAt { get; internal set; }

    internal static bool IsLoopback(Uri url) => url.IsLoopback;

    /// <summary>Adds the control listener: HTTP/2 only, TLS (and mTLS) for https.</summary>
    internal void Listen(KestrelServerOptions kestrel, ControlEndpointOptions options, string linkUrl)
    {
        var url = new Uri(options.EffectiveUrl(linkUrl));
        _configured = url;
        void Configure(ListenOptions listen)
        {
            _listen = listen;
            listen.Protocols = HttpProtocols.Http2;
            ListenerScoping.Tag(listen, ListenerRole.Control);
            if (url.Scheme != Uri.UriSchemeHttps)
            {
                return;
            }

            listen.UseHttps(https =>
            {
                if (options.CertificateFile is { } file)
                {
                    https.ServerCertificate = LoadCertificate(file, options.CertificateKeyFile);
                }

                if (options.RequireClientCertificate)
                {
                    https.ClientCertificateMode = ClientCertificateMode.RequireCertificate;
                    // Checked per call against AllowedClientCertificates, so a refused caller gets
                    // PermissionDenied with a reason instead of a bare handshake failure.
                    https.ClientCertificateValidation = (_, _, _) => true;
                }
            });
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

    private static X509Certificate2 LoadCertificate(string file, string? keyFile)
    {
        if (file.EndsWith(".pfx", StringComparison.OrdinalIgnoreCase) || file.EndsWith(".p12", StringComparison.OrdinalIgnoreCase))
        {
            return X509CertificateLoader.LoadPkcs12FromFile(file, password: null);
        }

        return X509Certificate2.CreateFromPemFile(file, keyFile);
    }
}
