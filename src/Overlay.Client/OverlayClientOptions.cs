namespace Overlay.Client;

/// <summary>How to reach a node's control endpoint (configuration section <c>Overlay:Client</c> by convention).</summary>
public sealed class OverlayClientOptions
{
    /// <summary>The section name the options are usually bound from.</summary>
    public const string SectionName = "Overlay:Client";

    /// <summary>The node's control endpoint; default <c>http://127.0.0.1:7401</c>.</summary>
    public Uri Endpoint { get; set; } = new("http://127.0.0.1:7401");

    /// <summary>The bearer token itself. Takes precedence over <see cref="TokenFile"/>.</summary>
    public string? Token { get; set; }

    /// <summary>A file holding the token (the node writes its operator token to <c>&lt;data directory&gt;/control.token</c>).</summary>
    public string? TokenFile { get; set; }

    /// <summary>A client certificate for mTLS: a PEM file (with <see cref="ClientKeyFile"/> if the key is separate) or a PFX/P12 file.</summary>
    public string? ClientCertificateFile { get; set; }

    /// <summary>The PEM private key of <see cref="ClientCertificateFile"/>, if separate.</summary>
    public string? ClientKeyFile { get; set; }

    /// <summary>The largest message the client accepts from the node; default 16 MiB (the node's own limit is at most that).</summary>
    public int MaxReceiveMessageBytes { get; set; } = 16 * 1024 * 1024;

    /// <summary>How many bytes one tunnel write carries at most; larger writes are split. Default 64 KiB.</summary>
    public int TunnelWriteChunkBytes { get; set; } = 64 * 1024;
}
