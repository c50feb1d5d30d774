using Microsoft.Extensions.Options;

namespace Overlay.Client.Internal;

/// <summary>Checks <see cref="OverlayClientOptions"/>; every failure names its key.</summary>
internal sealed class OverlayClientOptionsValidator : IValidateOptions<OverlayClientOptions>
{
    private const string Prefix = OverlayClientOptions.SectionName + ":";

    public ValidateOptionsResult Validate(string? name, OverlayClientOptions options)
    {
        var failures = new List<string>();
        if (options.Endpoint is not { IsAbsoluteUri: true } endpoint || endpoint.Scheme is not ("http" or "https"))
        {
            failures.Add($"{Prefix}Endpoint must be an absolute http or https URL (e.g. http://127.0.0.1:7401), not '{options.Endpoint}'");
        }

        if (string.IsNullOrWhiteSpace(options.Token) && string.IsNullOrWhiteSpace(options.TokenFile))
        {
            failures.Add($"{Prefix}Token or {Prefix}TokenFile must be set: every control call carries a bearer token");
        }

        if (options.ClientKeyFile is not null && options.ClientCertificateFile is null)
        {
            failures.Add($"{Prefix}ClientKeyFile needs {Prefix}ClientCertificateFile");
        }

        if (options.MaxReceiveMessageBytes is < 4096 or > 64 * 1024 * 1024)
        {
            failures.Add($"{Prefix}MaxReceiveMessageBytes must be between 4 KiB and 64 MiB");
        }

        if (options.TunnelWriteChunkBytes is < 1024 or > 1024 * 1024)
        {
            failures.Add($"{Prefix}TunnelWriteChunkBytes must be between 1 KiB and 1 MiB (the node's default message limit)");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
