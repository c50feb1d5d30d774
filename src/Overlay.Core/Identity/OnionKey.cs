using Overlay.Crypto;

namespace Overlay.Identity;

/// <summary>
/// A medium-term X25519 onion key with its epoch number and validity. The private key stays in
/// libsodium's guarded memory (<see cref="SodiumSecret"/>); there are only a few per node.
/// </summary>
public sealed class OnionKey : IDisposable
{
    /// <summary>The size of the public key in bytes.</summary>
    public const int PublicKeySize = 32;

    private const int PrivateKeySize = 32;

    private readonly byte[] _publicKey = new byte[PublicKeySize];
    private readonly bool _exportable;
    private int _archived;

    private OnionKey(SodiumSecret privateKey, uint epoch, DateTimeOffset validFrom, DateTimeOffset expiresAt, bool exportable)
    {
        PrivateKey = privateKey;
        Epoch = epoch;
        ValidFrom = validFrom;
        ExpiresAt = expiresAt;
        _exportable = exportable;
        try
        {
            Sodium.ScalarMultBase(_publicKey, privateKey);
        }
        catch
        {
            privateKey.Dispose();
            throw;
        }
    }

    /// <summary>The epoch number; headers name the epoch of the key they were built for.</summary>
    public uint Epoch { get; }

    /// <summary>When the key starts being published.</summary>
    public DateTimeOffset ValidFrom { get; }

    /// <summary>When the key stops being published (headers are accepted for an overlap window after).</summary>
    public DateTimeOffset ExpiresAt { get; }

    /// <summary>The raw 32-byte public key (its top bit is always clear).</summary>
    public ReadOnlySpan<byte> PublicKey => _publicKey;

    internal SodiumSecret PrivateKey { get; }

    /// <summary>Creates a fresh key. Exportable keys can be persisted with their replay cache.</summary>
    public static OnionKey Create(uint epoch, DateTimeOffset validFrom, DateTimeOffset expiresAt, bool exportable = false) =>
        new(SodiumSecret.Random(PrivateKeySize), epoch, validFrom, expiresAt, exportable);

    /// <summary>Imports a raw 32-byte private key.</summary>
    public static OnionKey Import(ReadOnlySpan<byte> rawPrivateKey, uint epoch, DateTimeOffset validFrom, DateTimeOffset expiresAt, bool exportable = false)
    {
        if (rawPrivateKey.Length != PrivateKeySize)
        {
            throw new ArgumentException($"an X25519 private key is {PrivateKeySize} bytes", nameof(rawPrivateKey));
        }

        return new OnionKey(SodiumSecret.Copy(rawPrivateKey), epoch, validFrom, expiresAt, exportable);
    }

    /// <summary>Whether the key was created exportable (it can be saved with its replay cache).</summary>
    internal bool Exportable => _exportable;

    /// <summary>
    /// Writes the raw private key to <paramref name="destination"/>, once: a key saved twice could be
    /// restored twice, each copy with a replay cache that lacks the other's tags.
    /// </summary>
    internal void ArchivePrivateKey(Span<byte> destination)
    {
        if (!_exportable)
        {
            throw new InvalidOperationException($"the onion key of epoch {Epoch} was not created exportable");
        }

        if (Interlocked.Exchange(ref _archived, 1) != 0)
        {
            throw new InvalidOperationException($"the onion key of epoch {Epoch} was already archived");
        }

        PrivateKey.CopyTo(destination);
    }

    public void Dispose() => PrivateKey.Dispose();

    public override string ToString() => $"onion key epoch {Epoch}";
}
