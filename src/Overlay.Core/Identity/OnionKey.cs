using NSec.Cryptography;

namespace Overlay.Identity;

/// <summary>
/// A medium-term X25519 onion key with its epoch number and validity. The private key stays in
/// libsodium's guarded memory (an NSec <see cref="Key"/>); there are only a few per node.
/// </summary>
public sealed class OnionKey : IDisposable
{
    /// <summary>The size of the public key in bytes.</summary>
    public const int PublicKeySize = 32;

    private readonly byte[] _publicKey;

    private OnionKey(Key privateKey, uint epoch, DateTimeOffset validFrom, DateTimeOffset expiresAt)
    {
        PrivateKey = privateKey;
        Epoch = epoch;
        ValidFrom = validFrom;
        ExpiresAt = expiresAt;
        _publicKey = privateKey.PublicKey.Export(KeyBlobFormat.RawPublicKey);
    }

    /// <summary>The epoch number; headers name the epoch of the key they were built for.</summary>
    public uint Epoch { get; }

    /// <summary>When the key starts being published.</summary>
    public DateTimeOffset ValidFrom { get; }

    /// <summary>When the key stops being published (headers are accepted for an overlap window after).</summary>
    public DateTimeOffset ExpiresAt { get; }

    /// <summary>The raw 32-byte public key (its top bit is always clear).</summary>
    public ReadOnlySpan<byte> PublicKey => _publicKey;

    internal Key PrivateKey { get; }

    /// <summary>Creates a fresh key. Exportable keys can be persisted with their replay cache.</summary>
    public static OnionKey Create(uint epoch, DateTimeOffset validFrom, DateTimeOffset expiresAt, bool exportable = false)
    {
        var parameters = new KeyCreationParameters
        {
            ExportPolicy = exportable ? KeyExportPolicies.AllowPlaintextArchiving : KeyExportPolicies.None,
        };
        return new OnionKey(Key.Create(KeyAgreementAlgorithm.X25519, parameters), epoch, validFrom, expiresAt);
    }

    /// <summary>Imports a raw 32-byte private key.</summary>
    public static OnionKey Import(ReadOnlySpan<byte> rawPrivateKey, uint epoch, DateTimeOffset validFrom, DateTimeOffset expiresAt, bool exportable = false)
    {
        var parameters = new KeyCreationParameters
        {
            ExportPolicy = exportable ? KeyExportPolicies.AllowPlaintextArchiving : KeyExportPolicies.None,
        };
        return new OnionKey(Key.Import(KeyAgreementAlgorithm.X25519, rawPrivateKey, KeyBlobFormat.RawPrivateKey, parameters), epoch, validFrom, expiresAt);
    }

    /// <summary>Exports the raw private key (only for keys created exportable).</summary>
    internal byte[] ExportPrivateKey() => PrivateKey.Export(KeyBlobFormat.RawPrivateKey);

    /// <inheritdoc />
    public void Dispose() => PrivateKey.Dispose();

    /// <inheritdoc />
    public override string ToString() => $"onion key epoch {Epoch}";
}
