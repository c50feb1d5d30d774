using System.Security.Cryptography;
using Overlay.Crypto;

namespace Overlay.Tests.Crypto;

/// <summary>
/// RFC 5869 known answers for HKDF-SHA256 through the calls <see cref="HopKeys"/> makes (BCL
/// <see cref="HKDF.Extract(HashAlgorithmName, ReadOnlySpan{byte}, ReadOnlySpan{byte}, Span{byte})"/> into a
/// 32-byte PRK, then <see cref="HKDF.Expand(HashAlgorithmName, ReadOnlySpan{byte}, Span{byte}, ReadOnlySpan{byte})"/>
/// per label), and <see cref="HopKeys.Derive"/> itself against RFC 5869's definition written out in HMAC.
/// </summary>
public sealed class HkdfKnownAnswerTests
{
    public static TheoryData<string, string, string, string, string> Rfc5869Sha256Cases() => new()
    {
        // Test case 1: basic.
        {
            "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "000102030405060708090a0b0c", "f0f1f2f3f4f5f6f7f8f9",
            "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
        },
        // Test case 2: longer inputs and outputs (three blocks).
        {
            Range(0x00, 80), Range(0x60, 80), Range(0xb0, 80),
            "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
            "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87"
        },
        // Test case 3: zero-length salt and info.
        {
            "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "", "",
            "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
        },
    };

    [Theory]
    [MemberData(nameof(Rfc5869Sha256Cases))]
    public void The_key_schedule_calls_match_rfc_5869(string ikm, string salt, string info, string expectedPrk, string expectedOkm)
    {
        Span<byte> prk = stackalloc byte[32];
        HKDF.Extract(HashAlgorithmName.SHA256, Convert.FromHexString(ikm), Convert.FromHexString(salt), prk);
        Assert.Equal(expectedPrk, Convert.ToHexStringLower(prk));

        var okm = new byte[expectedOkm.Length / 2];
        HKDF.Expand(HashAlgorithmName.SHA256, prk, okm, Convert.FromHexString(info));
        Assert.Equal(expectedOkm, Convert.ToHexStringLower(okm));
    }

    [Theory]
    [MemberData(nameof(Rfc5869Sha256Cases))]
    public void The_hmac_definition_used_below_matches_rfc_5869(string ikm, string salt, string info, string expectedPrk, string expectedOkm)
    {
        var prk = ExtractByDefinition(Convert.FromHexString(salt), Convert.FromHexString(ikm));
        Assert.Equal(expectedPrk, Convert.ToHexStringLower(prk));
        Assert.Equal(expectedOkm, Convert.ToHexStringLower(ExpandByDefinition(prk, Convert.FromHexString(info), expectedOkm.Length / 2)));
    }

    [Fact]
    public void Hop_keys_are_rfc_5869_with_the_documented_salt_and_labels()
    {
        // docs/protocol.md 5.1: PRK = HKDF-Extract(salt = "overlay/v1", s), key(label, L) = HKDF-Expand(PRK, label, L).
        var secret = SHA256.HashData("overlay/v1 hkdf known answer"u8);
        var prk = ExtractByDefinition("overlay/v1"u8.ToArray(), secret);
        using var keys = HopKeys.Derive(secret);
        Assert.Equal(Expand("overlay/v1 header mac"), keys.HeaderMac.ToArray());
        Assert.Equal(Expand("overlay/v1 header stream"), keys.HeaderStream.ToArray());
        Assert.Equal(Expand("overlay/v1 forward layer"), keys.ForwardLayer.ToArray());
        Assert.Equal(Expand("overlay/v1 backward layer"), keys.BackwardLayer.ToArray());
        Assert.Equal(Expand("overlay/v1 forward mac"), keys.ForwardMac.ToArray());
        Assert.Equal(Expand("overlay/v1 forward seal"), keys.ForwardSeal.ToArray());
        Assert.Equal(Expand("overlay/v1 backward seal"), keys.BackwardSeal.ToArray());
        Assert.Equal(Expand("overlay/v1 trace"), keys.Trace.ToArray());
        Assert.Equal(
            Convert.ToHexStringLower(ExpandByDefinition(prk, "overlay/v1 replay tag"u8.ToArray(), 16)),
            keys.ReplayTag.ToString("x32", System.Globalization.CultureInfo.InvariantCulture));

        byte[] Expand(string label) => ExpandByDefinition(prk, System.Text.Encoding.ASCII.GetBytes(label), 32);
    }

    // RFC 5869 section 2.2: PRK = HMAC-Hash(salt, IKM); an absent salt is HashLen zeros.
    private static byte[] ExtractByDefinition(byte[] salt, byte[] ikm) =>
        HMACSHA256.HashData(salt.Length == 0 ? new byte[32] : salt, ikm);

    // RFC 5869 section 2.3: T(i) = HMAC-Hash(PRK, T(i-1) || info || i), OKM = the first L bytes of T(1) || T(2) || ...
    private static byte[] ExpandByDefinition(byte[] prk, byte[] info, int length)
    {
        var okm = new byte[length];
        var previous = Array.Empty<byte>();
        for (var (offset, counter) = (0, (byte)1); offset < length; counter++)
        {
            previous = HMACSHA256.HashData(prk, (byte[])[.. previous, .. info, counter]);
            var take = Math.Min(previous.Length, length - offset);
            previous.AsSpan(0, take).CopyTo(okm.AsSpan(offset));
            offset += take;
        }

        return okm;
    }

    private static string Range(int first, int count)
    {
        var bytes = new byte[count];
        for (var i = 0; i < count; i++)
        {
            bytes[i] = (byte)(first + i);
        }

        return Convert.ToHexStringLower(bytes);
    }
}
