using System.Security.Cryptography;
using Overlay.Identity;

namespace Overlay.Replies;

/// <summary>
/// Keeps the secrets of a node's outstanding reply blocks in its key directory (<see cref="KeyDirectory"/>),
/// so a reply that arrives after a restart can still be opened (docs/protocol.md §7.8). One owner-only
/// file per block, <c>reply-&lt;handle&gt;.secret</c>, written atomically: the 4 ASCII bytes <c>OVRB</c>,
/// format version (1 byte), <see cref="ReplyBlockSecret.Encode"/>, then a SHA-256 of the preceding bytes.
/// The handle is a random local name, unrelated to the reply id, so a file name says nothing of the block.
/// </summary>
public static class ReplySecretFiles
{
    private const string Prefix = "reply-";
    private const string Suffix = ".secret";
    private const byte FormatVersion = 1;
    private const int HandleSize = 16;
    private const int DigestSize = 32;

    // A secret has at most 255 relays of 64 bytes each, plus its fixed part.
    private const int MaxFileSize = 5 + ReplyBlockSecret.ReplyIdSize + 9 + (255 * 64) + DigestSize;

    private static ReadOnlySpan<byte> Magic => "OVRB"u8;

    /// <summary>A fresh random handle (32 hex digits) to name a block's file with.</summary>
    public static string NewHandle() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(HandleSize));

    /// <summary>Writes <paramref name="secret"/> under <paramref name="handle"/>, replacing nothing.</summary>
    /// <exception cref="InvalidOperationException">The key directory fails its checks.</exception>
    public static void Save(string dataDirectory, string handle, ReplyBlockSecret secret)
    {
        ArgumentNullException.ThrowIfNull(secret);
        var path = PathFor(dataDirectory, handle);
        var encoded = secret.Encode();
        var file = new byte[Magic.Length + 1 + encoded.Length + DigestSize];
        try
        {
            Magic.CopyTo(file);
            file[Magic.Length] = FormatVersion;
            encoded.CopyTo(file.AsSpan(Magic.Length + 1));
            SHA256.HashData(file.AsSpan(0, file.Length - DigestSize), file.AsSpan(file.Length - DigestSize));
            using var writer = PrivateFile.BeginWrite(path);
            writer.WriteAt(file, 0);
            writer.Commit(overwrite: false);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(encoded);
            CryptographicOperations.ZeroMemory(file);
        }
    }

    /// <summary>Deletes the file of <paramref name="handle"/> (nothing if it is gone).</summary>
    public static void Delete(string dataDirectory, string handle) => File.Delete(PathFor(dataDirectory, handle));

    /// <summary>
    /// Reads every reply secret in the key directory of <paramref name="dataDirectory"/>. Files that expired
    /// at <paramref name="now"/>, are corrupt, or are readable by group or others (the keys may have leaked)
    /// are deleted: the expired silently, the others listed in <see cref="ReplySecretLoadResult.Discarded"/>.
    /// </summary>
    public static ReplySecretLoadResult Load(string dataDirectory, DateTimeOffset now)
    {
        ArgumentException.ThrowIfNullOrEmpty(dataDirectory);
        var loaded = new List<(string, ReplyBlockSecret)>();
        var discarded = new List<string>();
        var expired = 0;
        if (!Directory.Exists(dataDirectory))
        {
            return new ReplySecretLoadResult(loaded, discarded, expired);
        }

        var directory = KeyDirectory.Open(dataDirectory);
        foreach (var path in Directory.EnumerateFiles(directory, Prefix + "*").Order(StringComparer.Ordinal))
        {
            var name = Path.GetFileName(path);
            var handle = name.EndsWith(Suffix, StringComparison.Ordinal) ? name[Prefix.Length..^Suffix.Length] : null;
            ReplyBlockSecret? secret = null;
            var problem = handle is null || !IsHandle(handle) ? "not a reply secret file this node writes (an interrupted write?)" : Read(path, out secret);
            if (problem is null && secret!.ExpiresAt <= now)
            {
                secret.Dispose();
                File.Delete(path);
                expired++;
            }
            else if (problem is null)
            {
                loaded.Add((handle!, secret!));
            }
            else
            {
                File.Delete(path);
                discarded.Add($"{path}: {problem}");
            }
        }

        return new ReplySecretLoadResult(loaded, discarded, expired);
    }

    private static string? Read(string path, out ReplyBlockSecret? secret)
    {
        secret = null;
        using var stream = PrivateFile.OpenRead(path, out var looseMode);
        if (looseMode is { } mode)
        {
            return $"accessible by group or others (mode {PrivateFile.ToOctal(mode)}), so its keys may have leaked";
        }

        var length = stream.Length;
        if (length < Magic.Length + 1 + DigestSize || length > MaxFileSize)
        {
            return "not the size of a reply secret";
        }

        var file = GC.AllocateArray<byte>((int)length, pinned: true);
        try
        {
            PrivateFile.ReadExactly(stream.SafeFileHandle, file, 0);
            Span<byte> digest = stackalloc byte[DigestSize];
            SHA256.HashData(file.AsSpan(0, file.Length - DigestSize), digest);
            if (!file.AsSpan(0, Magic.Length).SequenceEqual(Magic) || file[Magic.Length] != FormatVersion
                || !CryptographicOperations.FixedTimeEquals(digest, file.AsSpan(file.Length - DigestSize)))
            {
                return "corrupt (wrong magic, version or digest)";
            }

            return ReplyBlockSecret.TryDecode(file.AsSpan(Magic.Length + 1, file.Length - Magic.Length - 1 - DigestSize), out secret)
                ? null
                : "corrupt (not a reply secret)";
        }
        finally
        {
            CryptographicOperations.ZeroMemory(file);
        }
    }

    private static string PathFor(string dataDirectory, string handle)
    {
        ArgumentException.ThrowIfNullOrEmpty(dataDirectory);
        if (!IsHandle(handle))
        {
            throw new ArgumentException("a handle is 32 lower-case hex digits", nameof(handle));
        }

        return Path.Combine(KeyDirectory.Open(dataDirectory), Prefix + handle + Suffix);
    }

    /// <summary>True when <paramref name="handle"/> has the form of a handle (32 lower-case hex digits).</summary>
    public static bool IsHandle(string handle) =>
        handle.Length == 2 * HandleSize && handle.AsSpan().IndexOfAnyExcept("0123456789abcdef") < 0;
}

/// <summary>What <see cref="ReplySecretFiles.Load"/> found.</summary>
/// <param name="Secrets">The secrets still valid, each with its handle; the caller owns (and disposes) them.</param>
/// <param name="Discarded">Files deleted unread or unusable, each with its path and why (never key material).</param>
/// <param name="Expired">Files deleted because their block had expired.</param>
public sealed record ReplySecretLoadResult(IReadOnlyList<(string Handle, ReplyBlockSecret Secret)> Secrets, IReadOnlyList<string> Discarded, int Expired);
