using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Overlay.Client;

namespace Overlay.Cli;

/// <summary>The CLI's <see cref="OverlayClient"/>, made through the library's own registration, and what its failures mean to a user.</summary>
internal sealed class CliConnection : IDisposable
{
    /// <summary>Where a node writes its generated token, relative to its working directory.</summary>
    public const string DefaultTokenFile = "data/control.token";

    private readonly ServiceProvider _services;

    private CliConnection(ServiceProvider services)
    {
        _services = services;
        try
        {
            Client = services.GetRequiredService<OverlayClient>();
        }
        catch (OptionsValidationException exception)
        {
            throw new CliException(ExitCodes.Usage, string.Join("; ", exception.Failures));
        }
    }

    public OverlayClient Client { get; }

    /// <summary>Connects with the token from <paramref name="tokenFile"/>, OVERLAY_TOKEN, OVERLAY_TOKEN_FILE or ./data/control.token.</summary>
    public static CliConnection Open(string node, string? tokenFile, string? clientCertificate, string? clientKey)
    {
        if (!Uri.TryCreate(node, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https"))
        {
            throw new CliException(ExitCodes.Usage, $"--node '{node}' is not an http or https URL (e.g. http://127.0.0.1:7401)");
        }

        var environmentToken = Environment.GetEnvironmentVariable("OVERLAY_TOKEN");
        var services = new ServiceCollection();
        services.AddOverlayClient(options =>
        {
            options.Endpoint = url;
            if (tokenFile is null && !string.IsNullOrWhiteSpace(environmentToken))
            {
                options.Token = environmentToken;
            }
            else
            {
                options.TokenFile = tokenFile ?? Environment.GetEnvironmentVariable("OVERLAY_TOKEN_FILE") ?? DefaultTokenFile;
            }

            options.ClientCertificateFile = clientCertificate;
            options.ClientKeyFile = clientKey;
        });
        return new CliConnection(services.BuildServiceProvider());
    }

    /// <summary>What to tell the user about a failed call, and the exit code.</summary>
    public static CliException Explain(OverlayException exception)
    {
        if (exception.Reason is null && IsTlsFailure(exception))
        {
            // A node's TLS link endpoint answers with a certificate no CA signed and demands one back.
            return new CliException(ExitCodes.Usage,
                $"the TLS handshake failed: the address may be a node's link endpoint, which admits only nodes; use its control endpoint (Overlay:Control:Url) [{exception.Message}]");
        }

        var hint = exception.StatusCode == StatusCode.Unauthenticated ? " (pass --token-file FILE)" : "";
        return new CliException(ExitCodes.For(exception.StatusCode), $"{exception.Message}{hint}");
    }

    private static bool IsTlsFailure(Exception exception)
    {
        for (Exception? cause = exception; cause is not null; cause = cause is Grpc.Core.RpcException rpc ? rpc.Status.DebugException : cause.InnerException)
        {
            if (cause is System.Security.Authentication.AuthenticationException or HttpRequestException { HttpRequestError: HttpRequestError.SecureConnectionError })
            {
                return true;
            }
        }

        return false;
    }

    public void Dispose() => _services.Dispose();
}
