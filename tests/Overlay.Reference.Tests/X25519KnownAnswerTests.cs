using Overlay.Reference.Spec;

namespace Overlay.Reference;

/// <summary>RFC 7748 section 6.1 through the reference's own X25519 path (NSec), so a vector match is not two wrong curves agreeing.</summary>
public sealed class X25519KnownAnswerTests
{
    [Fact]
    public void Diffie_hellman_matches_rfc_7748_section_6_1()
    {
        var alice = Bytes.FromHex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        var bob = Bytes.FromHex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
        Assert.Equal("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a", Bytes.ToHex(X25519.PublicKey(alice)));
        Assert.Equal("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f", Bytes.ToHex(X25519.PublicKey(bob)));
        Assert.Equal("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742", Bytes.ToHex(X25519.Agree(alice, X25519.PublicKey(bob))));
        Assert.Equal("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742", Bytes.ToHex(X25519.Agree(bob, X25519.PublicKey(alice))));
    }

    [Fact]
    public void A_low_order_point_yields_no_secret()
    {
        var alice = Bytes.FromHex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        var secret = X25519.Agree(alice, new byte[32]);
        Assert.True(secret is null || Bytes.AllZero(secret));
    }
}
