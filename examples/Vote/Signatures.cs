using NSec.Cryptography;

namespace Overlay.Examples.Vote;

/// <summary>Ed25519 through libsodium (NSec): voters' identities and envelope keys.</summary>
internal static class Signatures
{
    public const int PublicKeyBytes = 32;

    private static readonly SignatureAlgorithm Algorithm = SignatureAlgorithm.Ed25519;

    /// <summary>A fresh key pair that never leaves this process.</summary>
    public static Key Create() => Key.Create(Algorithm);

    public static byte[] PublicKeyOf(Key key) => key.PublicKey.Export(KeyBlobFormat.RawPublicKey);

    public static byte[] Sign(Key key, ReadOnlySpan<byte> statement) => Algorithm.Sign(key, statement);

    /// <summary>False for a malformed key or signature as for a wrong one.</summary>
    public static bool Verify(byte[] publicKey, ReadOnlySpan<byte> statement, byte[] signature) =>
        signature.Length == Algorithm.SignatureSize
        && PublicKey.TryImport(Algorithm, publicKey, KeyBlobFormat.RawPublicKey, out var key)
        && Algorithm.Verify(key!, statement, signature);
}
