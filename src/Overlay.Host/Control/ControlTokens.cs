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

    /// <summary>The operator's caller name.</summary>
    public const string OperatorName = "operator";

    /// <summary>The caller name of Overlay:Control:ApplicationTokenFile's holders.</summary>
    public const string ApplicationName = "application";

    private const int MinimumLength = 16;
    private readonly byte[] _operator;
    private readonly (string Name, byte[] Digest)[] _applications;

    private ControlTokens(byte[] operatorDigest, (string Name, byte[] Digest)[] applications, string operatorPath)
    {
        _operator = operatorDigest;
        _applications = applications;
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

        var operatorDigest = Digest(operatorToken);
        var applications = new List<(string Name, byte[] Digest, string Setting)>();
        if (options.ApplicationTokenFile is { } applicationFile)
        {
            applications.Add((ApplicationName, ReadApplication(applicationFile, "Overlay:Control:ApplicationTokenFile", logger), "Overlay:Control:ApplicationTokenFile"));
        }

        foreach (var (name, application) in options.Applications.Where(a => a.Value.TokenFile is not null).OrderBy(a => a.Key, StringComparer.Ordinal))
        {
            var setting = $"Overlay:Control:Applications:{name}:TokenFile";
            applications.Add((name, ReadApplication(application.TokenFile!, setting, logger), setting));
        }

        // One token, one caller: a shared token would make two applications one.
        for (var i = 0; i < applications.Count; i++)
        {
            if (CryptographicOperations.FixedTimeEquals(applications[i].Digest, operatorDigest))
            {
                throw new InvalidOperationException($"{applications[i].Setting} holds the operator token; give the application its own");
            }

            for (var j = 0; j < i; j++)
            {
                if (CryptographicOperations.FixedTimeEquals(applications[i].Digest, applications[j].Digest))
                {
                    throw new InvalidOperationException($"{applications[j].Setting} and {applications[i].Setting} hold the same token; give each application its own");
                }
            }
        }

        return new ControlTokens(operatorDigest, [.. applications.Select(a => (a.Name, a.Digest))], operatorPath);
    }

    /// <summary>The role and caller name the token grants, or null. Always compares against every token.</summary>
    public (ControlRole Role, string Name)? Match(ReadOnlySpan<char> token)
    {
        Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
        var bytes = Encoding.UTF8.GetBytes(token.ToArray());
        SHA256.HashData(bytes, digest);
        (ControlRole Role, string Name)? match = CryptographicOperations.FixedTimeEquals(digest, _operator) ? (ControlRole.Operator, OperatorName) : null;
        foreach (var (name, application) in _applications)
        {
            if (CryptographicOperations.FixedTimeEquals(digest, application))
            {
                match = (ControlRole.Application, name);
            }
        }

        return match;
    }

    private static byte[] ReadApplication(string path, string setting, ILogger logger) =>
        File.Exists(path)
            ? Digest(Read(path, setting, logger))
            : throw new InvalidOperationException($"{setting} '{path}' does not exist; create it or remove the setting");

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
