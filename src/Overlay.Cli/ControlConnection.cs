using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using Overlay.Protocol.Control.V1;

namespace Overlay.Cli;

/// <summary>A connection to a node's control endpoint, with the bearer token on every call.</summary>
internal sealed class ControlConnection : IDisposable
{
    /// <summary>Where a node writes its generated token, relative to its working directory.</summary>
    public const string DefaultTokenFile = "data/control.token";

    private readonly GrpcChannel _channel;

    private ControlConnection(Uri node, string token, X509Certificate2? clientCertificate)
    {
        Node = node;
        var handler = new SocketsHttpHandler { EnableMultipleHttp2Connections = true, UseProxy = false };
        if (clientCertificate is not null)
        {
            handler.SslOptions.ClientCertificates = [clientCertificate];
        }

        _channel = GrpcChannel.ForAddress(node, new GrpcChannelOptions { HttpHandler = handler, MaxReceiveMessageSize = 16 * 1024 * 1024, DisposeHttpClient = true });
        Api = new Control.ControlClient(_channel.Intercept(headers =>
        {
            headers.Add("authorization", $"Bearer {token}");
            return headers;
        }));
    }

    public Uri Node { get; }

    public Control.ControlClient Api { get; }

    /// <summary>Connects with the token from <paramref name="tokenFile"/>, OVERLAY_TOKEN, OVERLAY_TOKEN_FILE or ./data/control.token.</summary>
    public static ControlConnection Open(string node, string? tokenFile, string? clientCertificate, string? clientKey)
    {
        if (!Uri.TryCreate(node, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https"))
        {
            throw new CliException(ExitCodes.Usage, $"--node '{node}' is not an http or https URL (e.g. http://127.0.0.1:7401)");
        }

        string token;
        var environmentToken = Environment.GetEnvironmentVariable("OVERLAY_TOKEN");
        if (tokenFile is null && !string.IsNullOrWhiteSpace(environmentToken))
        {
            token = environmentToken.Trim();
        }
        else
        {
            var path = tokenFile ?? Environment.GetEnvironmentVariable("OVERLAY_TOKEN_FILE") ?? DefaultTokenFile;
            if (!File.Exists(path))
            {
                throw new CliException(ExitCodes.Auth,
                    $"no token file at '{path}': the node writes its token to <data directory>/control.token when it starts; pass --token-file FILE (or set OVERLAY_TOKEN_FILE)");
            }

            try
            {
                token = File.ReadAllText(path).Trim();
            }
            catch (UnauthorizedAccessException)
            {
                throw new CliException(ExitCodes.Auth, $"cannot read the token file '{path}': run as the node's user (the file is owner-only) or use a token file you may read");
            }
        }

        X509Certificate2? certificate = null;
        if (clientCertificate is not null)
        {
            certificate = clientCertificate.EndsWith(".pfx", StringComparison.OrdinalIgnoreCase) || clientCertificate.EndsWith(".p12", StringComparison.OrdinalIgnoreCase)
                ? X509CertificateLoader.LoadPkcs12FromFile(clientCertificate, password: null)
                : X509Certificate2.CreateFromPemFile(clientCertificate, clientKey);
        }

        return new ControlConnection(url, token, certificate);
    }

    /// <summary>What to tell the user about a failed call, and the exit code.</summary>
    public CliException Explain(RpcException exception)
    {
        var reason = exception.Trailers.GetValue("overlay-reason");
        if (reason is null && IsTlsFailure(exception))
        {
            // A node's TLS link endpoint answers with a certificate no CA signed and demands one back.
            return new CliException(ExitCodes.Usage,
                $"the TLS handshake with {Node} failed: it may be a node's link endpoint, which admits only nodes; use its control endpoint (Overlay:Control:Url) [{exception.Status.Detail}]");
        }

        if (exception.StatusCode == StatusCode.Unavailable && reason is null)
        {
            return new CliException(ExitCodes.Unavailable,
                $"cannot reach the control endpoint at {Node}: is the node running, and is this its Overlay:Control:Url? (--node URL) [{exception.Status.Detail}]");
        }

        if (exception.StatusCode == StatusCode.Unimplemented)
        {
            return new CliException(ExitCodes.Usage, $"{Node} does not serve the control API: it may be the node's link endpoint; use its control endpoint (Overlay:Control:Url)");
        }

        var hint = exception.StatusCode == StatusCode.Unauthenticated ? " (pass --token-file FILE)" : "";
        return new CliException(ExitCodes.For(exception.StatusCode), $"{exception.Status.Detail}{hint}");
    }

    private static bool IsTlsFailure(RpcException exception)
    {
        for (Exception? cause = exception.Status.DebugException; cause is not null; cause = cause.InnerException)
        {
            if (cause is System.Security.Authentication.AuthenticationException or HttpRequestException { HttpRequestError: HttpRequestError.SecureConnectionError })
            {
                return true;
            }
        }

        return false;
    }

    public void Dispose() => _channel.Dispose();
}

/// <summary>A failure with its exit code and a message that says what to do.</summary>
public sealed class CliException(int exitCode, string message) : Exception(message)
{
    /// <summary>The process exit code.</summary>
    public int ExitCode { get; } = exitCode;
}
