using NSec.Cryptography;

namespace Overlay.Reference.Spec;

/// <summary>X25519 (RFC 7748, clamping included) through NSec, not through the project's own libsodium calls.</summary>
internal static class X25519
{
    private static readonly KeyAgreementAlgorithm Algorithm = KeyAgreementAlgorithm.X25519;

    public static byte[] PublicKey(byte[] privateKey)
    {
        using var key = Key.Import(Algorithm, privateKey, KeyBlobFormat.RawPrivateKey);
        return key.PublicKey.Export(KeyBlobFormat.RawPublicKey);
    }

    /// <summary>The shared secret, or null when there is none (a low-order point).</summary>
    public static byte[]? Agree(byte[] privateKey, byte[] publicKey)
    {
        using var key = Key.Import(Algorithm, privateKey, KeyBlobFormat.RawPrivateKey);
        if (!NSec.Cryptography.PublicKey.TryImport(Algorithm, publicKey, KeyBlobFormat.RawPublicKey, out var peer) || peer is null)
        {
            return null;
        }

        using var secret = Algorithm.Agree(key, peer, new SharedSecretCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport });
        return secret?.Export(SharedSecretBlobFormat.RawSharedSecret);
    }
}
