using Overlay.Errors;

namespace Overlay.Tests.Protocol;

public sealed class TunnelErrorKindTests
{
    [Fact]
    public void FromWire_keeps_every_known_code_and_maps_the_rest_to_protocol_violation()
    {
        var known = Enum.GetValues<TunnelErrorKind>().Where(k => k != TunnelErrorKind.None).Select(k => (byte)k).ToHashSet();
        Assert.Equal(24, known.Count);
        Assert.Equal((byte)TunnelErrorKinds.Last, known.Max());

        for (var code = 0; code <= 255; code++)
        {
            var expected = known.Contains((byte)code) ? (TunnelErrorKind)code : TunnelErrorKind.ProtocolViolation;
            Assert.Equal(expected, TunnelErrorKinds.FromWire((byte)code));
        }
    }

    [Fact]
    public void The_wire_codes_never_change()
    {
        Assert.Equal(1, (int)TunnelErrorKind.Tampered);
        Assert.Equal(2, (int)TunnelErrorKind.Replayed);
        Assert.Equal(3, (int)TunnelErrorKind.UnknownEpoch);
        Assert.Equal(11, (int)TunnelErrorKind.Busy);
        Assert.Equal(12, (int)TunnelErrorKind.Truncated);
        Assert.Equal(13, (int)TunnelErrorKind.ProtocolViolation);
        Assert.Equal(19, (int)TunnelErrorKind.Internal);
        Assert.Equal(20, (int)TunnelErrorKind.IdleTimeout);
        Assert.Equal(21, (int)TunnelErrorKind.Unconfirmed);
        Assert.Equal(22, (int)TunnelErrorKind.LinkUnauthenticated);
        Assert.Equal(23, (int)TunnelErrorKind.Expired);
        Assert.Equal(24, (int)TunnelErrorKind.NotAMember);
    }

    [Fact]
    public void Every_kind_has_its_own_lower_case_tag()
    {
        var tags = Enum.GetValues<TunnelErrorKind>().Select(k => k.ToTag()).ToArray();

        Assert.Equal(tags.Length, tags.Distinct().Count());
        Assert.All(tags, t => Assert.Matches("^[a-z_]+$", t));
        Assert.DoesNotContain("unknown", tags);
        Assert.Equal("unknown", ((TunnelErrorKind)200).ToTag());
        Assert.Equal("timeout", TunnelErrorKind.DeadlineExceeded.ToTag());
    }

    [Fact]
    public void A_tunnel_exception_carries_kind_hop_and_a_readable_message()
    {
        var atHop = new TunnelException(TunnelErrorKind.NextHopUnreachable, 3);
        var atOrigin = new TunnelException(TunnelErrorKind.NoRoute);

        Assert.Equal((TunnelErrorKind.NextHopUnreachable, 3), (atHop.Kind, atHop.Hop));
        Assert.Equal("tunnel failed at hop 3: next_hop_unreachable", atHop.Message);
        Assert.Equal("tunnel failed: no_route", atOrigin.Message);
    }
}
