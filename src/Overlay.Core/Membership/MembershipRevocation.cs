using System.Buffers.Binary;
using Overlay.Identity;

namespace Overlay.Membership;

/// <summary>
/// An authority's signed statement that a node is no longer a member of a private network, however
/// valid its membership: gossiped like memberships and kept until <see cref="Until"/>, the end of
/// the longest membership any authority could have issued it. Layout in docs/protocol.md 4.1.
/// </summary>
/// <remarks>
/// <code>
/// off  size  field
/// 0    1     format version = 1
/// 1    32    authority key
/// 33   32    node id
/// 65   8     RevokedAt, Unix seconds, signed 64-bit big-endian
/// 73   8     Until, the same encoding
/// 81   64    Ed25519 signature by the authority over "overlay-revocation-v1" || bytes [0, 81)
/// </code>
/// </remarks>
public sealed class MembershipRevocation
{
    /// <summary>The format version this code writes and reads.</summary>
    public const byte Version = 1;

    /// <summary>The encoded size.</summary>
    public const int Size = SignatureAt + NodeIdentity.SignatureSize;

    /// <summary>The longest a revocation may be kept: the longest membership plus a day's allowance for clock skew.</summary>
    public static readonly TimeSpan MaxKeep = NodeMembership.MaxValidity + TimeSpan.FromDays(1);

    private const int AuthorityAt = 1;
    private const int NodeAt = AuthorityAt + NodeId.Size;
    private const int RevokedAtAt = NodeAt + NodeId.Size;
    private const int UntilAt = RevokedAtAt + sizeof(long);
    private const int SignatureAt = UntilAt + sizeof(long);

    private MembershipRevocation(byte[] encoded, NodeId authority, NodeId node, DateTimeOffset revokedAt, DateTimeOffset until)
    {
        Encoded = encoded;
        Authority = authority;
        Node = node;
        RevokedAt = revokedAt;
        Until = until;
    }

    /// <summary>The domain separator the authority signs before the fields.</summary>
    public static ReadOnlySpan<byte> SignatureDomain => "overlay-revocation-v1"u8;

    /// <summary>The signed bytes, as they travel.</summary>
    public ReadOnlyMemory<byte> Encoded { get; }

    /// <summary>The authority that revoked.</summary>
    public NodeId Authority { get; }

    /// <summary>The node revoked.</summary>
    public NodeId Node { get; }

    /// <summary>When it was revoked.</summary>
    public DateTimeOffset RevokedAt { get; }

    /// <summary>Until when it must be kept (after which no membership issued before <see cref="RevokedAt"/> is valid anyway).</summary>
    public DateTimeOffset Until { get; }

    /// <summary>Signs a revocation of <paramref name="node"/>, kept until <paramref name="until"/>.</summary>
    public static MembershipRevocation Issue(NodeIdentity authority, NodeId node, DateTimeOffset revokedAt, DateTimeOffset until)
    {
        ArgumentNullException.ThrowIfNull(authority);
        revokedAt = DateTimeOffset.FromUnixTimeSeconds(revokedAt.ToUnixTimeSeconds());
        until = DateTimeOffset.FromUnixTimeSeconds(until.ToUnixTimeSeconds());
        if (until <= revokedAt || until - revokedAt > NodeMembership.MaxValidity + TimeSpan.FromDays(1))
        {
            throw new ArgumentOutOfRangeException(nameof(until), "a revocation is kept for more than zero and at most the longest membership and a day");
        }

        var encoded = new byte[Size];
        var span = encoded.AsSpan();
        span[0] = Version;
        authority.Id.CopyTo(span[AuthorityAt..]);
        node.CopyTo(span[NodeAt..]);
        BinaryPrimitives.WriteInt64BigEndian(span[RevokedAtAt..], revokedAt.ToUnixTimeSeconds());
        BinaryPrimitives.WriteInt64BigEndian(span[UntilAt..], until.ToUnixTimeSeconds());
        authority.Sign(SignedMessage(span[..SignatureAt]), span[SignatureAt..]);
        return new MembershipRevocation(encoded, authority.Id, node, revokedAt, until);
    }

    /// <summary>The bytes an authority signs: <see cref="SignatureDomain"/> || the fields.</summary>
    public static byte[] SignedMessage(ReadOnlySpan<byte> fields)
    {
        var message = new byte[SignatureDomain.Length + fields.Length];
        SignatureDomain.CopyTo(message);
        fields.CopyTo(message.AsSpan(SignatureDomain.Length));
        return message;
    }

    /// <summary>
    /// Reads a revocation signed by one of <paramref name="authorities"/> and still to be kept at
    /// <paramref name="now"/>. Sizes, authority and times come before the signature.
    /// </summary>
    public static MembershipError TryParse(ReadOnlySpan<byte> encoded, IReadOnlySet<NodeId> authorities, DateTimeOffset now, out MembershipRevocation? revocation)
    {
        ArgumentNullException.ThrowIfNull(authorities);
        revocation = null;
        if (encoded.Length != Size)
        {
            return MembershipError.Malformed;
        }

        if (encoded[0] != Version)
        {
            return MembershipError.UnsupportedVersion;
        }

        var revokedAt = BinaryPrimitives.ReadInt64BigEndian(encoded[RevokedAtAt..]);
        var until = BinaryPrimitives.ReadInt64BigEndian(encoded[UntilAt..]);
        if (until <= revokedAt || until - revokedAt > (long)MaxKeep.TotalSeconds
            || revokedAt < DateTimeOffset.MinValue.ToUnixTimeSeconds() || until > DateTimeOffset.MaxValue.ToUnixTimeSeconds())
        {
            return MembershipError.BadValidity;
        }

        var authority = new NodeId(encoded.Slice(AuthorityAt, NodeId.Size));
        if (!authorities.Contains(authority))
        {
            return MembershipError.UnknownAuthority;
        }

        if (now > DateTimeOffset.FromUnixTimeSeconds(until))
        {
            return MembershipError.Expired;
        }

        if (!NodeIdentity.Verify(authority, SignedMessage(encoded[..SignatureAt]), encoded[SignatureAt..]))
        {
            return MembershipError.BadSignature;
        }

        revocation = new MembershipRevocation(encoded.ToArray(), authority, new NodeId(encoded.Slice(NodeAt, NodeId.Size)),
            DateTimeOffset.FromUnixTimeSeconds(revokedAt), DateTimeOffset.FromUnixTimeSeconds(until));
        return MembershipError.None;
    }

    /// <summary>True when this revocation voids <paramref name="membership"/>: the same node, issued before the revocation.</summary>
    public bool Voids(NodeMembership membership) =>
        membership.Node == Node && membership.NotBefore <= RevokedAt;
}
