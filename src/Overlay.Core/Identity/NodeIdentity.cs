using System.Security.Cryptography;
using NSec.Cryptography;

namespace Overlay.Identity;

/// <summary>
/// A node's long-term Ed25519 identity. The private key stays in libsodium's guarded memory
/// (an NSec <see cref="Key"/>); it is never logged, printed or put in an exception message.
/// </summary>
/// <remarks>
/// <see cref="LoadOrCreate"/> keeps the key in <c>identity.key</c>: the 4 ASCII bytes
/// <c>OVID</c>, a format version byte (1), then the 32-byte raw Ed25519 private key (seed).
/// </remarks>
public sealed class NodeIdentity : IDisposable
{
    /// <summary>The name of the key file in the data directory's <see cref="KeyDirectory"/>.</summary>
    public const string FileName = "identity.key";

    /// <summary>The size of a signature in bytes.</summary>
    public const int SignatureSize = 64;

    private const byte FileVersion = 1;
    private const int PrivateKeySize = 32;
    private const int FileHeaderSize = 5;
    private const int FileSize = FileHeaderSize + PrivateKeySize;

    private static readonly SignatureAlgorithm Ed25519 = SignatureAlgorithm.Ed25519;

    private readonly Key _key;

    private NodeIdentity(Key key)
    {
        _key = key;
        Id = new NodeId(key.PublicKey.Export(KeyBlobFormat.RawPublicKey));
    }

    private static ReadOnlySpan<byte> FileMagic => "OVID"u8;

    /// <summary>The node id: the raw Ed25519 public key.</summary>
    public NodeId Id { get; }

    /// <summary>Creates a fresh identity in memory.</summary>
    public static NodeIdentity Create() => new(Key.Create(Ed25519, CreationParameters()));

    // Null on a first start (no file yet); any other failure to read it is the caller's.
    private static NodeIdentity? TryLoad(string path)
    {
        try
        {
            return Load(path);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
    }

    /// <summary>
    /// Loads the identity from <see cref="FileName"/> in the key directory of <paramref name="dataDirectory"/>,
    /// or creates one and saves it there (creating the directories) when the file does not exist.
    /// </summary>
    /// <exception cref="InvalidOperationException">
    /// On Unix, the key file is accessible by group or others, or the key directory fails its checks (<see cref="KeyDirectory"/>).
    /// </exception>
    /// <exception cref="InvalidDataException">The key file is not a valid identity key file.</exception>
    public static NodeIdentity LoadOrCreate(string dataDirectory)
    {
        ArgumentException.ThrowIfNullOrEmpty(dataDirectory);
        var path = Path.Combine(KeyDirectory.Open(dataDirectory), FileName);
        if (TryLoad(path) is { } existing)
        {
            return existing;
        }

        var identity = Create();
        try
        {
            identity.Save(path);
            return identity;
        }
        catch (IOException) when (File.Exists(path))
        {
            // Another process created it first: use that one rather than replace an identity.
            identity.Dispose();
            return Load(path);
        }
        catch
        {
            identity.Dispose();
            throw;
        }
    }

    /// <summary>Signs <paramref name="data"/>, writing <see cref="SignatureSize"/> bytes to <paramref name="signature"/>.</summary>
    public void Sign(ReadOnlySpan<byte> data, Span<byte> signature)
    {
        if (signature.Length != SignatureSize)
        {
            throw new ArgumentException($"a signature is {SignatureSize} bytes", nameof(signature));
        }

        Ed25519.Sign(_key, data, signature);
    }

    /// <summary>True when <paramref name="signature"/> is <paramref name="id"/>'s signature of <paramref name="data"/>.</summary>
    public static bool Verify(NodeId id, ReadOnlySpan<byte> data, ReadOnlySpan<byte> signature)
    {
        if (signature.Length != SignatureSize
            || !PublicKey.TryImport(Ed25519, id.AsSpan(), KeyBlobFormat.RawPublicKey, out var publicKey)
            || publicKey is null)
        {
            return false;
        }

        return Ed25519.Verify(publicKey, data, signature);
    }

    /// <inheritdoc />
    public void Dispose() => _key.Dispose();

    /// <inheritdoc />
    public override string ToString() => $"node identity {Id.ToShortString()}";

    private static KeyCreationParameters CreationParameters() =>
        new() { ExportPolicy = KeyExportPolicies.AllowPlaintextArchiving };

    private static NodeIdentity Load(string path)
    {
        using var stream = PrivateFile.OpenRead(path, out var looseMode);
        if (looseMode is { } mode)
        {
            throw new InvalidOperationException(
                $"The identity key file '{path}' is accessible by group or others (mode {PrivateFile.ToOctal(mode)}), " +
                $"so the key may have leaked; the node refuses to use it. Restrict it with 'chmod 600 {path}' " +
                "(or delete it to create a new identity) and start again.");
        }

        if (stream.Length != FileSize)
        {
            throw new InvalidDataException($"'{path}' is not an identity key file: {stream.Length} bytes, expected {FileSize}.");
        }

        Span<byte> buffer = stackalloc byte[FileSize];
        try
        {
            PrivateFile.ReadExactly(stream.SafeFileHandle, buffer, 0);
            if (!buffer[..FileMagic.Length].SequenceEqual(FileMagic))
            {
                throw new InvalidDataException($"'{path}' is not an identity key file (wrong magic bytes).");
            }

            if (buffer[FileMagic.Length] != FileVersion)
            {
                throw new InvalidDataException(
                    $"The identity key file '{path}' has format version {buffer[FileMagic.Length]}; this build reads version {FileVersion}.");
            }

            return new NodeIdentity(Key.Import(Ed25519, buffer[FileHeaderSize..], KeyBlobFormat.RawPrivateKey, CreationParameters()));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(buffer);
        }
    }

    private void Save(string path)
    {
        Span<byte> buffer = stackalloc byte[FileSize];
        try
        {
            FileMagic.CopyTo(buffer);
            buffer[FileMagic.Length] = FileVersion;
            if (!_key.TryExport(KeyBlobFormat.RawPrivateKey, buffer[FileHeaderSize..], out var written) || written != PrivateKeySize)
            {
                throw new InvalidOperationException("the identity key could not be exported");
            }

            using var writer = PrivateFile.BeginWrite(path);
            writer.WriteAt(buffer, 0);
            writer.Commit(overwrite: false);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(buffer);
        }
    }
}
