using Overlay.Crypto;

namespace Overlay.Tests.Crypto;

/// <summary>
/// AES-256-GCM known answers (test cases 13 to 15 of the GCM specification, McGrew and Viega; the
/// same cases are in NIST's validation suite) through <see cref="CellAead"/>, on each of its two
/// paths on its own: a known answer, never the BCL compared with itself.
/// </summary>
public sealed class AesGcmKnownAnswerTests
{
    private const string SpecKey = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";
    private const string SpecPlaintext = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255";

    public static TheoryData<string, string, string, string, string> Cases() => new()
    {
        // Test case 13: empty message, the tag alone.
        { new string('0', 64), new string('0', 24), "", "", "530f8afbc74536b9a963b4f1c4cb738b" },
        // Test case 14: one zero block.
        { new string('0', 64), new string('0', 24), new string('0', 32), "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919" },
        // Test case 15: four blocks.
        {
            SpecKey, "cafebabefacedbaddecaf888", SpecPlaintext,
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
            "b094dac5d93471bdec1a502270e3cc6c"
        },
    };

    [LibsodiumAesGcmTheory]
    [MemberData(nameof(Cases))]
    public void The_libsodium_path_matches_the_gcm_specification(string key, string nonce, string plaintext, string ciphertext, string tag) =>
        Check(useBcl: false, key, nonce, plaintext, ciphertext, tag);

    [Theory]
    [MemberData(nameof(Cases))]
    public void The_bcl_path_matches_the_gcm_specification(string key, string nonce, string plaintext, string ciphertext, string tag) =>
        Check(useBcl: true, key, nonce, plaintext, ciphertext, tag);

    private static void Check(bool useBcl, string key, string nonce, string plaintext, string ciphertext, string tag)
    {
        using var aead = new CellAead(Convert.FromHexString(key), useBcl);
        var nonceBytes = Convert.FromHexString(nonce);
        var plain = Convert.FromHexString(plaintext);
        var sealedBytes = new byte[plain.Length];
        var sealedTag = new byte[16];
        aead.Encrypt(nonceBytes, plain, sealedBytes, sealedTag);
        Assert.Equal(ciphertext, Convert.ToHexStringLower(sealedBytes));
        Assert.Equal(tag, Convert.ToHexStringLower(sealedTag));

        var opened = new byte[plain.Length];
        Assert.True(aead.TryDecrypt(nonceBytes, Convert.FromHexString(ciphertext), Convert.FromHexString(tag), opened));
        Assert.Equal(plain, opened);

        var forged = Convert.FromHexString(tag);
        forged[15] ^= 0x80;
        Assert.False(aead.TryDecrypt(nonceBytes, Convert.FromHexString(ciphertext), forged, opened));
    }
}

/// <summary>A theory about libsodium's AES-GCM: skipped, saying why, on a CPU without the instructions it needs.</summary>
internal sealed class LibsodiumAesGcmTheoryAttribute : TheoryAttribute
{
    public LibsodiumAesGcmTheoryAttribute()
    {
        if (!Sodium.AesGcmAvailable)
        {
            // CellAead would fall back to the BCL, and the test would check the BCL path a second time.
            Skip = "this CPU lacks AES-NI and PCLMUL (or the ARM equivalents): libsodium's AES-256-GCM is unavailable and CellAead uses the BCL, which the BCL-path test already checks";
        }
    }
}
