using Grpc.Core;

namespace Overlay.Client.Internal;

/// <summary>The bearer token: given, or read once from its file.</summary>
internal sealed class ControlToken(OverlayClientOptions options)
{
    private readonly Lazy<string> _value = new(() => Read(options), LazyThreadSafetyMode.ExecutionAndPublication);

    public string Value => _value.Value;

    private static string Read(OverlayClientOptions options)
    {
        if (!string.IsNullOrWhiteSpace(options.Token))
        {
            return options.Token.Trim();
        }

        var path = options.TokenFile!;
        try
        {
            var token = File.ReadAllText(path).Trim();
            return token.Length > 0
                ? token
                : throw new OverlayAuthenticationException(StatusCode.Unauthenticated, "missing_token", $"the token file '{path}' is empty");
        }
        catch (Exception exception) when (exception is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new OverlayAuthenticationException(StatusCode.Unauthenticated, "missing_token",
                $"no token file at '{path}': the node writes its token to <data directory>/control.token when it starts", exception);
        }
        catch (UnauthorizedAccessException exception)
        {
            throw new OverlayAuthenticationException(StatusCode.Unauthenticated, "missing_token",
                $"cannot read the token file '{path}': run as the node's user (the file is owner-only) or use a token file you may read", exception);
        }
    }
}
