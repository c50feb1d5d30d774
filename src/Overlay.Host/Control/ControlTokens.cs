using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;

namespace Overlay.Host.Control;

/// <summary>Who a control caller is, from the token it presented.</summary>
public enum ControlRole
{
    /// <summary>Everything.</summary>
    Operator,

    /// <summary>Tunnels, listening, pings, events and reads; no peer changes, key rotation or other callers' tunnels.</summary>
    Application,
}

/// <summary>
/// The control API's bearer tokens. The operator token comes from Overlay:Control:TokenFile if
/// that file exists, else it is generated at every start into the data directory, owner-only
/// (like Tor's cookie authentication). Tokens are compared in constant time, as SHA-256 digests
/// so that neither the length nor the content leaks through timing.
/// </summary>
internal sealed class ControlTokens
{
    /// <summary>The generated token's file name in the data directory.</summary>
    public const string GeneratedFileName = "control.token";

    private const int MinimumLength = 16;
    private readonly byte[] _operator;
    private readonly byte[]? _application;

    private ControlTokens(byte[] operatorDigest, byte[]? applicationDigest, string operatorPath)
    {
        _operator = operatorDigest;
        _application = applicationDigest;
        OperatorTokenPath = operatorPath;
    }

    /// <summary>The file the operator token was read from or written to.</summary>
    public string OperatorTokenPath { get; }

    public static ControlTokens Load(ControlEndpointOptions options, string dataDirectory, ILogger logger)
    {
        string operatorPath;
        string operatorToken;
        if (options.TokenFile is { } configured && File.Exists(configured))
        {
            operatorPath = Path.GetFullPath(configured);
            operatorToken = Read(operatorPath, "Overlay:Control:TokenFile", logger);
            ControlLog.TokenRead(logger, operatorPath);
        }
        else
        {
            operatorPath = Path.GetFullPath(Path.Combine(dataDirectory, GeneratedFileName));
            operatorToken = Generate(operatorPath);
            ControlLog.TokenGenerated(logger, operatorPath);
        }

        byte[]? application = null;
        if (options.ApplicationTokenFile is { } applicationFile)
        {
            if (!File.Exists(applicationFile))
            {
                throw new InvalidOperationException($"Overlay:Control:ApplicationTokenFile '{applicationFile}' does not exist; create it or remove the setting");
            }

            application = Digest(Read(applicationFile, "Overlay:Control:ApplicationTokenFile", logger));
        }

        return new ControlTokens(Digest(operatorToken), application, operatorPath);
    }

    /// <summary>The role the token grants, or null. Always compares against every token.</summary>
    public ControlRole? Match(ReadOnlySpan<char> token)
    {
        Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
        var bytes = Encoding.UTF8.GetBytes(token.ToArray());
        SHA256.HashData(bytes, digest);
        var isOperator = CryptographicOperations.FixedTimeEquals(digest, _operator);
        var isApplication = _application is not null && CryptographicOperations.FixedTimeEquals(digest, _application);
        return isOperator ? ControlRole.Operator : isApplication ? ControlRole.Application : null;
    }

    private static byte[] Digest(string token) => SHA256.HashData(Encoding.UTF8.GetBytes(token));

    private static string Read(string path, string setting, ILogger logger)
    {
        // A mounted secret may well be group-readable; only world access is worth a warning.
        if (!OperatingSystem.IsWindows() && (File.GetUnixFileMode(path) & (UnixFileMode.OtherRead | UnixFileMode.OtherWrite)) != 0)
        {
            ControlLog.TokenWorldReadable(logger, path);
        }

        var token = File.ReadAllText(path).Trim();
        if (token.Length < MinimumLength || token.Any(char.IsWhiteSpace))
        {
            throw new InvalidOperationException($"{setting} '{path}' must hold one token of at least {MinimumLength} characters without spaces");
        }

        return token;
    }

    private static string Generate(string path)
    {
        var token = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
        var directory = Path.GetDirectoryName(path)!;
        System.IO.Directory.CreateDirectory(directory);
        var temporary = $"{path}.{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8))}.tmp";
        var create = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
        {
            // Owner-only from the first byte, never chmod-ed afterwards.
            create.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        try
        {
            using (var stream = new FileStream(temporary, create))
            {
                stream.Write(Encoding.ASCII.GetBytes(token + "\n"));
                stream.Flush(flushToDisk: true);
            }

            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            File.Delete(temporary);
        }

        return token;
    }
}
