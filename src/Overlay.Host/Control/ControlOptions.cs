using Microsoft.Extensions.Options;
using Overlay.Host.Options;

namespace Overlay.Host.Control;

/// <summary>
/// The control endpoint (section <c>Overlay:Control</c>): its own HTTP/2 listener, bound to
/// loopback by default. Beyond loopback it must use TLS, since the bearer token travels with
/// every call.
/// </summary>
public sealed class ControlEndpointOptions
{
    /// <summary>Serve the control API at all. Default true.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>The default control URL.</summary>
    public const string DefaultUrl = "http://127.0.0.1:7401";

    /// <summary>
    /// The URL Kestrel listens on (HTTP/2 only). Port 0 picks a free port. Default
    /// <c>http://127.0.0.1:7401</c>, or <c>http://127.0.0.1:0</c> when the link endpoint itself
    /// uses port 0 (devnets and tests run many nodes in one process).
    /// </summary>
    public string? Url { get; set; }

    /// <summary>The URL in effect: <see cref="Url"/>, or the default for this link endpoint.</summary>
    public string EffectiveUrl(string linkUrl) =>
        Url ?? (Uri.TryCreate(linkUrl, UriKind.Absolute, out var link) && link.Port == 0 ? "http://127.0.0.1:0" : DefaultUrl);

    /// <summary>
    /// The operator token: read from this file if it exists (a mounted secret, for example).
    /// Otherwise a fresh token is generated at every start into <c>DataDirectory/control.token</c>
    /// with mode 0600, like Tor's cookie authentication.
    /// </summary>
    public string? TokenFile { get; set; }

    /// <summary>
    /// An optional second token for applications: tunnels, listening, pings, events and reads,
    /// but not peer changes, key rotation or closing other callers' tunnels (PermissionDenied).
    /// </summary>
    public string? ApplicationTokenFile { get; set; }

    /// <summary>
    /// Named applications, each with its own token (<c>Overlay:Control:Applications:&lt;name&gt;:TokenFile</c>):
    /// each is its own caller, seeing, closing and hearing of only its own tunnels, with its own
    /// quota. Same rights as the application token.
    /// </summary>
    public Dictionary<string, ControlApplicationOptions> Applications { get; set; } = new(StringComparer.Ordinal);

    /// <summary>
    /// The named services this node hosts (<c>Overlay:Control:Services:&lt;name&gt;:Owner</c>), each
    /// owned by one caller (<c>operator</c>, <c>application</c> or a name under
    /// <see cref="Applications"/>): only the owner may listen for it. A tunnel naming any other
    /// service is refused with destination_refused, as is one that arrives while its owner is not listening.
    /// </summary>
    public Dictionary<string, ControlServiceOptions> Services { get; set; } = new(StringComparer.Ordinal);

    /// <summary>https only: the server certificate (PEM or PFX); default: Kestrel's default certificate.</summary>
    public string? CertificateFile { get; set; }

    /// <summary>https only: the PEM private key of <see cref="CertificateFile"/>, if separate.</summary>
    public string? CertificateKeyFile { get; set; }

    /// <summary>https only: require a client certificate (mTLS) in addition to the token. Default false.</summary>
    public bool RequireClientCertificate { get; set; }

    /// <summary>With mTLS: the SHA-256 thumbprints (hex) of the client certificates allowed; others get PermissionDenied.</summary>
    public List<string> AllowedClientCertificates { get; set; } = [];

    /// <summary>Events (and peer changes) buffered per watcher before it is ended as too slow. Default 1024.</summary>
    public int EventsBufferSize { get; set; } = 1024;

    /// <summary>Tunnels one client (token) may have open through the control API at once. Default 256.</summary>
    public int MaxTunnelsPerClient { get; set; } = 256;

    /// <summary>Listening applications at once. Default 64.</summary>
    public int MaxListeners { get; set; } = 64;

    /// <summary>Listening registrations one client (token) may hold at once, so no application takes every slot. Default 16.</summary>
    public int MaxListenersPerClient { get; set; } = 16;

    /// <summary>Offers waiting for Accept per listener; beyond it incoming tunnels get Busy. Default 64.</summary>
    public int MaxPendingPerListener { get; set; } = 64;

    /// <summary>How long an offered tunnel waits for Accept before the origin gets destination_refused. Default 10 s.</summary>
    public TimeSpan AcceptTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Largest control message in bytes (a data chunk). Default 1 MiB.</summary>
    public int MaxMessageBytes { get; set; } = 1024 * 1024;

    /// <summary>Most ping attempts in one call. Default 10,000.</summary>
    public int MaxPingCount { get; set; } = 10_000;
}

/// <summary>Checks the <c>Overlay:Control</c> section at start, with messages that say what to change.</summary>
internal sealed class ControlOptionsValidator : IValidateOptions<OverlayOptions>
{
    public ValidateOptionsResult Validate(string? name, OverlayOptions options)
    {
        var control = options.Control;
        if (!control.Enabled)
        {
            return ValidateOptionsResult.Success;
        }

        var failures = new List<string>();
        var configured = control.EffectiveUrl(options.Link.Url);
        if (!Uri.TryCreate(configured, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https") || url.AbsolutePath != "/")
        {
            failures.Add($"Overlay:Control:Url must be an absolute http or https URL without a path, not '{configured}'");
        }
        else
        {
            if (url.Scheme == Uri.UriSchemeHttp && !ControlEndpoint.IsLoopback(url))
            {
                failures.Add($"Overlay:Control:Url '{configured}' is cleartext beyond loopback: the token travels with every call, so use https " +
                    "(Overlay:Control:CertificateFile, and RequireClientCertificate for mTLS) or bind to 127.0.0.1");
            }

            if (control.RequireClientCertificate && url.Scheme != Uri.UriSchemeHttps)
            {
                failures.Add("Overlay:Control:RequireClientCertificate needs an https Overlay:Control:Url");
            }

            if (Uri.TryCreate(options.Link.Url, UriKind.Absolute, out var link) && url.Port != 0 && link.Port == url.Port && link.Host == url.Host)
            {
                failures.Add($"Overlay:Control:Url and Overlay:Link:Url must not share port {url.Port}");
            }
        }

        if (control.RequireClientCertificate && control.AllowedClientCertificates.Count == 0 && control.Applications.Values.All(a => a.ClientCertificate is null))
        {
            failures.Add("Overlay:Control:RequireClientCertificate needs Overlay:Control:AllowedClientCertificates or an application's ClientCertificate (SHA-256 thumbprints)");
        }

        foreach (var thumbprint in control.AllowedClientCertificates)
        {
            if (!IsThumbprint(thumbprint))
            {
                failures.Add($"Overlay:Control:AllowedClientCertificates: '{thumbprint}' is not a SHA-256 thumbprint (64 hex digits)");
            }
        }

        if (control.EventsBufferSize is < 1 or > 1_000_000)
        {
            failures.Add("Overlay:Control:EventsBufferSize must be between 1 and 1,000,000");
        }

        if (control.MaxTunnelsPerClient < 1 || control.MaxListeners < 1 || control.MaxListenersPerClient < 1 || control.MaxPendingPerListener < 1 || control.MaxPingCount < 1)
        {
            failures.Add("Overlay:Control: MaxTunnelsPerClient, MaxListeners, MaxListenersPerClient, MaxPendingPerListener and MaxPingCount must be at least 1");
        }

        if (control.MaxMessageBytes is < 4096 or > 16 * 1024 * 1024)
        {
            failures.Add("Overlay:Control:MaxMessageBytes must be between 4 KiB and 16 MiB");
        }

        foreach (var (application, settings) in control.Applications)
        {
            if (!ControlApplicationOptions.IsValidName(application))
            {
                failures.Add($"Overlay:Control:Applications:{application}: a name is 1 to 32 lower-case letters, digits or '-', and not 'operator' or 'application'");
            }

            if (string.IsNullOrWhiteSpace(settings.TokenFile) && settings.ClientCertificate is null)
            {
                failures.Add($"Overlay:Control:Applications:{application}: give the application a TokenFile (its token) or a ClientCertificate (with mTLS)");
            }

            if (settings.ClientCertificate is { } thumbprint)
            {
                if (!IsThumbprint(thumbprint))
                {
                    failures.Add($"Overlay:Control:Applications:{application}:ClientCertificate: '{thumbprint}' is not a SHA-256 thumbprint (64 hex digits)");
                }

                if (!control.RequireClientCertificate)
                {
                    failures.Add($"Overlay:Control:Applications:{application}:ClientCertificate needs Overlay:Control:RequireClientCertificate");
                }
            }
        }

        foreach (var shared in control.Applications.Where(a => a.Value.ClientCertificate is not null)
            .GroupBy(a => a.Value.ClientCertificate!, StringComparer.OrdinalIgnoreCase).Where(g => g.Count() > 1))
        {
            failures.Add($"Overlay:Control:Applications: {string.Join(" and ", shared.Select(a => a.Key))} name the same ClientCertificate; a certificate identifies one application");
        }

        foreach (var (service, settings) in control.Services)
        {
            if (!ControlServiceOptions.IsValidName(service))
            {
                failures.Add($"Overlay:Control:Services:{service}: a service name is 1 to {ControlServiceOptions.MaxNameBytes} bytes of UTF-8 without NUL");
            }

            var owners = control.Applications.Keys.Append(ControlTokens.OperatorName)
                .Concat(control.ApplicationTokenFile is null ? [] : [ControlTokens.ApplicationName]);
            if (settings.Owner is null || !owners.Contains(settings.Owner, StringComparer.Ordinal))
            {
                failures.Add($"Overlay:Control:Services:{service}:Owner must be '{ControlTokens.OperatorName}'"
                    + (control.ApplicationTokenFile is null ? "" : $", '{ControlTokens.ApplicationName}'")
                    + " or a name under Overlay:Control:Applications, not '" + settings.Owner + "'");
            }
        }

        if (control.AcceptTimeout <= TimeSpan.Zero)
        {
            failures.Add("Overlay:Control:AcceptTimeout must be positive");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static bool IsThumbprint(string value) => value.Length == 64 && value.All(Uri.IsHexDigit);
}
