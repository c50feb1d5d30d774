using Overlay.Crypto;

namespace Overlay.Tests.Crypto;

/// <summary>RFC 7748 known answers through the project's X25519 calls (<see cref="Sodium"/>), not through NSec.</summary>
public sealed class X25519KnownAnswerTests
{
    [Theory]
    // RFC 7748 section 5.2, the two single scalar multiplications.
    [InlineData(
        "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
        "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
        "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552")]
    [InlineData(
        "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
        "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
        "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957")]
    public void Scalar_multiplication_matches_rfc_7748_section_5_2(string scalar, string u, string expected)
    {
        var shared = new byte[32];
        Assert.True(Sodium.ScalarMult(shared, Convert.FromHexString(scalar), Convert.FromHexString(u)));
        Assert.Equal(expected, Convert.ToHexStringLower(shared));
    }

    [Fact]
    public void Iterated_scalar_multiplication_matches_rfc_7748_section_5_2()
    {
        // k = u = 9; each round k, u = X25519(k, u), k.
        var k = new byte[32];
        k[0] = 9;
        var u = k.ToArray();
        var result = new byte[32];
        for (var round = 1; round <= 1000; round++)
        {
            Assert.True(Sodium.ScalarMult(result, k, u));
            (u, k, result) = (k, result, u);
            if (round == 1)
            {
                Assert.Equal("422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079", Convert.ToHexStringLower(k));
            }
        }

        Assert.Equal("684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51", Convert.ToHexStringLower(k));
    }

    [Fact]
    public void Diffie_hellman_matches_rfc_7748_section_6_1()
    {
        var alicePrivate = Convert.FromHexString("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        var bobPrivate = Convert.FromHexString("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
        var alicePublic = new byte[32];
        var bobPublic = new byte[32];
        Sodium.ScalarMultBase(alicePublic, alicePrivate);
        Sodium.ScalarMultBase(bobPublic, bobPrivate);
        Assert.Equal("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a", Convert.ToHexStringLower(alicePublic));
        Assert.Equal("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f", Convert.ToHexStringLower(bobPublic));

        var aliceShared = new byte[32];
        var bobShared = new byte[32];
        Assert.True(Sodium.ScalarMult(aliceShared, alicePrivate, bobPublic));
        Assert.True(Sodium.ScalarMult(bobShared, bobPrivate, alicePublic));
        Assert.Equal("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742", Convert.ToHexStringLower(aliceShared));
        Assert.Equal(aliceShared, bobShared);
    }

    [Fact]
    public void The_guarded_scalar_overloads_give_the_same_answers()
    {
        var alicePrivate = Convert.FromHexString("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        var bobPublic = Convert.FromHexString("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
        using var guarded = SodiumSecret.Copy(alicePrivate);
        var publicKey = new byte[32];
        var shared = new byte[32];
        Sodium.ScalarMultBase(publicKey, guarded);
        Assert.True(Sodium.ScalarMult(shared, guarded, bobPublic));
        Assert.Equal("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a", Convert.ToHexStringLower(publicKey));
        Assert.Equal("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742", Convert.ToHexStringLower(shared));
    }

    [Fact]
    public void A_low_order_point_yields_no_secret()
    {
        // u = 0 and u = 1 are of small order: the agreement is all zeros and the wrapper says so.
        var scalar = Convert.FromHexString("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        var shared = new byte[32];
        Assert.False(Sodium.ScalarMult(shared, scalar, new byte[32]));
        var one = new byte[32];
        one[0] = 1;
        Assert.False(Sodium.ScalarMult(shared, scalar, one));
    }
}
