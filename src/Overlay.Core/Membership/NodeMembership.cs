using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Overlay.Identity;

namespace Overlay.Membership;

/// <summary>
/// An authority's statement that a node (its id, at its link endpoint) belongs to a private
/// network for a time: what a node must show, beside its descriptor, to be gossiped, dialed and
/// routed through where the network names authorities. A fixed binary format, signed with the
/// authority's Ed25519 key; layout byte by byte in docs/protocol.md 4.2.
/// </summary>
/// <remarks>
/// <code>
/// off    size  field
/// 0      1     format version = 1
/// 1      32    authority key (Ed25519 public key)
/// 33     32    node id
/// 65     8     NotBefore, Unix seconds, signed 64-bit big-endian
/// 73     8     NotAfter, the same encoding
/// 81     1     endpoint length L (1..255)
/// 82     L     endpoint, UTF-8
/// 82+L   64    Ed25519 signature by the authority over "overlay-membership-v1" || bytes [0, 82+L)
/// </code>
/// </remarks>
public sealed class NodeMembership
{
    /// <summary>The format version this code writes and reads.</summary>
    public const byte Version = 1;

    /// <summary>The longest validity accepted: a membership is renewed, not kept.</summary>
    public static readonly TimeSpan MaxValidity = TimeSpan.FromDays(7);

    /// <summary>The encoded size without the endpoint.</summary>
    public const int FixedSize = EndpointAt + NodeIdentity.SignatureSize;

    /// <summary>The largest encoded membership (a 255-byte endpoint).</summary>
    public const int MaxSize = FixedSize + NodeDescriptor.MaxEndpointLength;

    private const int AuthorityAt = 1;
    private const int NodeAt = AuthorityAt + NodeId.Size;
    private const int NotBeforeAt = NodeAt + NodeId.Size;
    private const int NotAfterAt = NotBeforeAt + sizeof(long);
    private const int EndpointLengthAt = NotAfterAt + sizeof(long);
    private const int EndpointAt = EndpointLengthAt + 1;

    private NodeMembership(byte[] encoded, NodeId authority, NodeId node, Uri endpoint, DateTimeOffset notBefore, DateTimeOffset notAfter)
    {
        Encoded = encoded;
        Authority = authority;
        Node = node;
        Endpoint = endpoint;
        NotBefore = notBefore;
        NotAfter = notAfter;
    }

    /// <summary>The domain separator the authority signs before the fields.</summary>
    public static ReadOnlySpan<byte> SignatureDomain => "overlay-membership-v1"u8;

    /// <summary>The signed bytes, as they travel.</summary>
    public ReadOnlyMemory<byte> Encoded { get; }

    /// <summary>The Ed25519 public key of the authority that signed it.</summary>
    public NodeId Authority { get; }

    /// <summary>The member.</summary>
    public NodeId Node { get; }

    /// <summary>The member's link endpoint.</summary>
    public Uri Endpoint { get; }

    /// <summary>The start of the validity (whole seconds).</summary>
    public DateTimeOffset NotBefore { get; }

    /// <summary>The end of the validity (whole seconds).</summary>
    public DateTimeOffset NotAfter { get; }

    /// <summary>Signs a membership of <paramref name="node"/> at <paramref name="endpoint"/> with <paramref name="authority"/>'s key.</summary>
    public static NodeMembership Issue(NodeIdentity authority, NodeId node, Uri endpoint, DateTimeOffset notBefore, DateTimeOffset notAfter)
    {
        ArgumentNullException.ThrowIfNull(authority);
        ArgumentNullException.ThrowIfNull(endpoint);
        if (!NodeDescriptor.IsEndpointForm(endpoint))
        {
            throw new ArgumentException($"'{endpoint}' is not scheme://host:port", nameof(endpoint));
        }

        var endpointBytes = Encoding.UTF8.GetBytes(endpoint.OriginalString);
        if (endpointBytes.Length > NodeDescriptor.MaxEndpointLength)
        {
            throw new ArgumentException($"the endpoint is {endpointBytes.Length} bytes in UTF-8; at most {NodeDescriptor.MaxEndpointLength} are allowed", nameof(endpoint));
        }

        notBefore = DateTimeOffset.FromUnixTimeSeconds(notBefore.ToUnixTimeSeconds());
        notAfter = DateTimeOffset.FromUnixTimeSeconds(notAfter.ToUnixTimeSeconds());
        if (notAfter <= notBefore || notAfter - notBefore > MaxValidity)
        {
            throw new ArgumentOutOfRangeException(nameof(notAfter), $"a membership is valid for more than zero and at most {MaxValidity.TotalDays} days");
        }

        var encoded = new byte[FixedSize + endpointBytes.Length];
        var span = encoded.AsSpan();
        span[0] = Version;
        authority.Id.CopyTo(span[AuthorityAt..]);
        node.CopyTo(span[NodeAt..]);
        BinaryPrimitives.WriteInt64BigEndian(span[NotBeforeAt..], notBefore.ToUnixTimeSeconds());
        BinaryPrimitives.WriteInt64BigEndian(span[NotAfterAt..], notAfter.ToUnixTimeSeconds());
        span[EndpointLengthAt] = (byte)endpointBytes.Length;
        endpointBytes.CopyTo(span[EndpointAt..]);
        var signedLength = EndpointAt + endpointBytes.Length;
        authority.Sign(SignedMessage(span[..signedLength]), span[signedLength..]);
        return new NodeMembership(encoded, authority.Id, node, endpoint, notBefore, notAfter);
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
    /// Reads a membership and checks it against the network's <paramref name="authorities"/> at
    /// <paramref name="now"/> (with <paramref name="clockSkew"/> either way). Lengths, fields,
    /// authority and times are checked before the signature.
    /// </summary>
    public static MembershipError TryParse(ReadOnlySpan<byte> encoded, IReadOnlySet<NodeId> authorities, DateTimeOffset now, TimeSpan clockSkew, out NodeMembership? membership)
    {
        ArgumentNullException.ThrowIfNull(authorities);
        membership = null;
        if (encoded.Length < FixedSize + 1 || encoded.Length > MaxSize)
        {
            return MembershipError.Malformed;
        }

        if (encoded[0] != Version)
        {
            return MembershipError.UnsupportedVersion;
        }

        int endpointLength = encoded[EndpointLengthAt];
        if (encoded.Length != FixedSize + endpointLength)
        {
            return MembershipError.Malformed;
        }

        if (!NodeDescriptor.TryParseEndpoint(encoded.Slice(EndpointAt, endpointLength), out var endpoint))
        {
            return MembershipError.InvalidEndpoint;
        }

        var notBeforeSeconds = BinaryPrimitives.ReadInt64BigEndian(encoded[NotBeforeAt..]);
        var notAfterSeconds = BinaryPrimitives.ReadInt64BigEndian(encoded[NotAfterAt..]);
        if (notAfterSeconds <= notBeforeSeconds || notAfterSeconds - notBeforeSeconds > (long)MaxValidity.TotalSeconds
            || notBeforeSeconds < DateTimeOffset.MinValue.ToUnixTimeSeconds() || notAfterSeconds > DateTimeOffset.MaxValue.ToUnixTimeSeconds())
        {
            return MembershipError.BadValidity;
        }

        var authority = new NodeId(encoded.Slice(AuthorityAt, NodeId.Size));
        if (!authorities.Contains(authority))
        {
            return MembershipError.UnknownAuthority;
        }

        var notBefore = DateTimeOffset.FromUnixTimeSeconds(notBeforeSeconds);
        var notAfter = DateTimeOffset.FromUnixTimeSeconds(notAfterSeconds);
        if (now + clockSkew < notBefore)
        {
            return MembershipError.NotYetValid;
        }

        if (now - clockSkew > notAfter)
        {
            return MembershipError.Expired;
        }

        var signedLength = EndpointAt + endpointLength;
        if (!NodeIdentity.Verify(authority, SignedMessage(encoded[..signedLength]), encoded[signedLength..]))
        {
            return MembershipError.BadSignature;
        }

        membership = new NodeMembership(encoded.ToArray(), authority, new NodeId(encoded.Slice(NodeAt, NodeId.Size)), endpoint, notBefore, notAfter);
        return MembershipError.None;
    }

    /// <summary>True while the validity holds at <paramref name="now"/> (with <paramref name="clockSkew"/> either way).</summary>
    public bool IsValidAt(DateTimeOffset now, TimeSpan clockSkew) => now + clockSkew >= NotBefore && now - clockSkew <= NotAfter;

    /// <summary>
    /// True when this membership is for <paramref name="node"/> at <paramref name="endpoint"/>
    /// (the id compared in constant time, the endpoint as the descriptor states it).
    /// </summary>
    public bool Names(NodeId node, Uri endpoint) =>
        CryptographicOperations.FixedTimeEquals(Node.AsSpan(), node.AsSpan()) && Endpoint == endpoint;

    /// <inheritdoc />
    public override string ToString() => $"membership of node {Node.ToShortString()} at {Endpoint} until {NotAfter:o}, by authority {Authority.ToShortString()}";
}
