using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Text;
using System.Text.Unicode;
using Overlay.Onion;
using Overlay.Protocol;

namespace Overlay.Identity;

/// <summary>
/// A node's signed, versioned descriptor: who it is (Ed25519 node id), its current onion key,
/// the network parameters it runs with and where to reach it. Immutable; <see cref="Encoded"/>
/// is the exact signed encoding, so a descriptor is passed on byte for byte.
/// </summary>
/// <remarks>
/// Layout (big-endian integers), documented in docs/protocol.md:
/// <code>
/// off  size  field
/// 0    1     format version = 1
/// 1    32    node id (Ed25519 public key)
/// 33   32    onion key (X25519 public key; canonical, not of small order)
/// 65   4     onion epoch (uint32)
/// 69   8     onion valid-from (int64, unix seconds)
/// 77   8     onion expires-at (int64, unix seconds)
/// 85   8     published-at (int64, unix seconds)
/// 93   1     protocol version count p (1..8)
/// 94   p     protocol versions (one byte each)
/// .    4     features (uint32)
/// .    2     MaxRelays (uint16)
/// .    4     CellSize (uint32)
/// .    1     cell construction
/// .    1     max deadline class (0..7)
/// .    2     idle timeout (uint16, seconds)
/// .    2     endpoint length e (1..255)
/// .    e     endpoint (UTF-8 scheme://host:port/, http or https)
/// .    64    Ed25519 signature over "overlay/v1 descriptor" || bytes [0, here)
/// </code>
/// </remarks>
public sealed class NodeDescriptor
{
    /// <summary>The longest encoding accepted; anything longer is refused before parsing.</summary>
    public const int MaxSize = 512;

    /// <summary>The format version this code writes and reads.</summary>
    public const byte FormatVersion = 1;

    /// <summary>The protocol version this code speaks.</summary>
    public const byte ProtocolVersion = 1;

    /// <summary>The most protocol versions a descriptor lists.</summary>
    public const int MaxProtocolVersions = 8;

    /// <summary>The longest endpoint, in UTF-8 bytes.</summary>
    public const int MaxEndpointLength = 255;

    private const int IdOffset = 1;
    private const int OnionKeyOffset = 33;
    private const int EpochOffset = 65;
    private const int ValidFromOffset = 69;
    private const int ExpiresAtOffset = 77;
    private const int PublishedAtOffset = 85;
    private const int ProtocolCountOffset = 93;
    private const int ProtocolsOffset = 94;

    // Features (4), MaxRelays (2), CellSize (4), construction (1), max deadline class (1), idle timeout (2), endpoint length (2).
    private const int MiddleSize = 16;
    private const int EndpointLengthAt = 14;

    private static readonly long MinUnixSeconds = DateTimeOffset.MinValue.ToUnixTimeSeconds();
    private static readonly long MaxUnixSeconds = DateTimeOffset.MaxValue.ToUnixTimeSeconds();

    // The canonical X25519 points of order 1, 2, 4 and 8: 0, 1, the two of order 8, and p - 1.
    private static readonly byte[][] LowOrderPoints =
    [
        Convert.FromHexString("0000000000000000000000000000000000000000000000000000000000000000"),
        Convert.FromHexString("0100000000000000000000000000000000000000000000000000000000000000"),
        Convert.FromHexString("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
        Convert.FromHexString("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
        Convert.FromHexString("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    ];

    private readonly byte[] _encoded;

    private NodeDescriptor(byte[] encoded)
    {
        _encoded = encoded;
    }

    /// <summary>The ASCII context the signature covers before the descriptor bytes, so it can never be taken for another signed object.</summary>
    public static ReadOnlySpan<byte> SignatureContext => "overlay/v1 descriptor"u8;

    /// <summary>The node id (Ed25519 public key) that signed the descriptor.</summary>
    public NodeId Id { get; private init; }

    /// <summary>The raw 32-byte X25519 onion public key.</summary>
    public ReadOnlyMemory<byte> OnionKey { get; private init; }

    /// <summary>The onion key's epoch; headers built for this key name it.</summary>
    public uint OnionEpoch { get; private init; }

    /// <summary>When the onion key started being published (whole seconds).</summary>
    public DateTimeOffset OnionValidFrom { get; private init; }

    /// <summary>When the onion key stops being published (whole seconds).</summary>
    public DateTimeOffset OnionExpiresAt { get; private init; }

    /// <summary>When the descriptor was signed (whole seconds).</summary>
    public DateTimeOffset PublishedAt { get; private init; }

    /// <summary>The protocol versions the node speaks.</summary>
    public ImmutableArray<byte> ProtocolVersions { get; private init; }

    /// <summary>The node's optional features, including bits this code does not know.</summary>
    public DescriptorFeatures Features { get; private init; }

    /// <summary>The network parameters the node runs with (not necessarily valid ones: see <see cref="Validate"/>).</summary>
    public NetworkParameters Network { get; private init; } = NetworkParameters.Default;

    /// <summary>Where other nodes reach the node's link endpoint.</summary>
    public Uri Endpoint { get; private init; } = null!;

    /// <summary>The exact signed encoding.</summary>
    public ReadOnlyMemory<byte> Encoded => _encoded;

    /// <summary>Builds and signs a descriptor for <paramref name="identity"/> and its current <paramref name="onionKey"/>.</summary>
    /// <exception cref="ArgumentException">
    /// The endpoint is not scheme://host:port (http or https, an explicit port, no path, query,
    /// fragment or user info) of at most 255 bytes; the network parameters are invalid; or a
    /// feature bit is unknown.
    /// </exception>
    public static NodeDescriptor Create(
        NodeIdentity identity,
        OnionKey onionKey,
        Uri endpoint,
        NetworkParameters network,
        DateTimeOffset publishedAt,
        DescriptorFeatures features = DescriptorFeatures.None)
    {
        ArgumentNullException.ThrowIfNull(identity);
        ArgumentNullException.ThrowIfNull(onionKey);
        ArgumentNullException.ThrowIfNull(endpoint);
        ArgumentNullException.ThrowIfNull(network);
        network.EnsureValid();
        if ((features & ~DescriptorFeatures.SealedTraceContext) != 0)
        {
            throw new ArgumentException($"unknown feature bits 0x{(uint)features:x8}", nameof(features));
        }

        if (!IsEndpointForm(endpoint))
        {
            throw new ArgumentException($"the endpoint must be scheme://host:port (http or https, an explicit port, no path, query, fragment or user info), not '{endpoint}'", nameof(endpoint));
        }

        // Written with its port even when it is the scheme's default, so the encoding keeps the form it is checked for.
        var endpointBytes = Encoding.UTF8.GetBytes(endpoint.GetComponents(UriComponents.Scheme | UriComponents.Host | UriComponents.StrongPort, UriFormat.UriEscaped) + "/");
        if (endpointBytes.Length > MaxEndpointLength)
        {
            throw new ArgumentException($"the endpoint is {endpointBytes.Length} bytes in UTF-8; at most {MaxEndpointLength} are allowed", nameof(endpoint));
        }

        ReadOnlySpan<byte> versions = [ProtocolVersion];
        var signatureOffset = ProtocolsOffset + versions.Length + MiddleSize + endpointBytes.Length;
        var encoded = new byte[signatureOffset + NodeIdentity.SignatureSize];
        var span = encoded.AsSpan();
        span[0] = FormatVersion;
        identity.Id.CopyTo(span[IdOffset..]);
        onionKey.PublicKey.CopyTo(span[OnionKeyOffset..]);
        BinaryPrimitives.WriteUInt32BigEndian(span[EpochOffset..], onionKey.Epoch);
        BinaryPrimitives.WriteInt64BigEndian(span[ValidFromOffset..], onionKey.ValidFrom.ToUnixTimeSeconds());
        BinaryPrimitives.WriteInt64BigEndian(span[ExpiresAtOffset..], onionKey.ExpiresAt.ToUnixTimeSeconds());
        BinaryPrimitives.WriteInt64BigEndian(span[PublishedAtOffset..], publishedAt.ToUnixTimeSeconds());
        span[ProtocolCountOffset] = (byte)versions.Length;
        versions.CopyTo(span[ProtocolsOffset..]);
        var position = ProtocolsOffset + versions.Length;
        BinaryPrimitives.WriteUInt32BigEndian(span[position..], (uint)features);
        BinaryPrimitives.WriteUInt16BigEndian(span[(position + 4)..], checked((ushort)network.MaxRelays));
        BinaryPrimitives.WriteUInt32BigEndian(span[(position + 6)..], checked((uint)network.CellSize));
        span[position + 10] = (byte)network.Construction;
        span[position + 11] = (byte)network.MaxDeadlineClass;
        BinaryPrimitives.WriteUInt16BigEndian(span[(position + 12)..], checked((ushort)network.IdleTimeout.TotalSeconds));
        BinaryPrimitives.WriteUInt16BigEndian(span[(position + EndpointLengthAt)..], (ushort)endpointBytes.Length);
        endpointBytes.CopyTo(span[(position + MiddleSize)..]);
        Sign(identity, span[..signatureOffset], span[signatureOffset..]);

        // Parsing what was just built keeps one definition of the accepted form.
        var error = TryParse(encoded, out var descriptor);
        return error == DescriptorError.None
            ? descriptor!
            : throw new InvalidOperationException($"the descriptor just built does not parse: {error.Describe()}");
    }

    /// <summary>
    /// Parses <paramref name="encoded"/> and checks its structure and signature. Never throws on
    /// hostile input; the input is copied, so the caller may reuse its buffer.
    /// </summary>
    /// <remarks>
    /// Checks run cheapest first: size, format version, framing (<see cref="DescriptorError.Malformed"/>),
    /// field values (onion key, timestamps, endpoint), and the signature last, so hostile gossip costs
    /// a signature check only when everything else is in order. Network parameters and protocol
    /// versions are checked by <see cref="Validate"/>, or before the signature by the overload that
    /// takes the expected network.
    /// </remarks>
    public static DescriptorError TryParse(ReadOnlySpan<byte> encoded, out NodeDescriptor? descriptor) =>
        TryParse(encoded, validation: null, out descriptor);

    /// <summary>
    /// <see cref="TryParse(ReadOnlySpan{byte}, out NodeDescriptor?)"/> then <see cref="Validate"/>,
    /// with every check that needs no signature (including the network parameters and times) done
    /// before the signature is verified.
    /// </summary>
    public static DescriptorError TryParse(ReadOnlySpan<byte> encoded, NetworkParameters expected, DateTimeOffset now, TimeSpan clockSkew, out NodeDescriptor? descriptor)
    {
        ArgumentNullException.ThrowIfNull(expected);
        ArgumentOutOfRangeException.ThrowIfLessThan(clockSkew, TimeSpan.Zero);
        return TryParse(encoded, (expected, now, clockSkew), out descriptor);
    }

    private static DescriptorError TryParse(ReadOnlySpan<byte> encoded, (NetworkParameters Expected, DateTimeOffset Now, TimeSpan ClockSkew)? validation, out NodeDescriptor? descriptor)
    {
        descriptor = null;
        if (encoded.Length > MaxSize)
        {
            return DescriptorError.TooLarge;
        }

        if (encoded.IsEmpty)
        {
            return DescriptorError.Malformed;
        }

        if (encoded[0] != FormatVersion)
        {
            return DescriptorError.UnsupportedFormat;
        }

        if (encoded.Length <= ProtocolCountOffset)
        {
            return DescriptorError.Malformed;
        }

        int versionCount = encoded[ProtocolCountOffset];
        if (versionCount is < 1 or > MaxProtocolVersions)
        {
            return DescriptorError.Malformed;
        }

        // Every offset below is bounded by MaxSize plus one uint16 length: no overflow, no allocation.
        var position = ProtocolsOffset + versionCount;
        if (encoded.Length < position + MiddleSize)
        {
            return DescriptorError.Malformed;
        }

        int endpointLength = BinaryPrimitives.ReadUInt16BigEndian(encoded[(position + EndpointLengthAt)..]);
        var endpointOffset = position + MiddleSize;
        var signatureOffset = endpointOffset + endpointLength;
        if (encoded.Length != signatureOffset + NodeIdentity.SignatureSize)
        {
            return DescriptorError.Malformed;
        }

        var id = new NodeId(encoded.Slice(IdOffset, NodeId.Size));
        var onionKeyError = CheckOnionKey(encoded.Slice(OnionKeyOffset, Identity.OnionKey.PublicKeySize));
        if (onionKeyError != DescriptorError.None)
        {
            return onionKeyError;
        }

        var validFrom = BinaryPrimitives.ReadInt64BigEndian(encoded[ValidFromOffset..]);
        var expiresAt = BinaryPrimitives.ReadInt64BigEndian(encoded[ExpiresAtOffset..]);
        var publishedAt = BinaryPrimitives.ReadInt64BigEndian(encoded[PublishedAtOffset..]);
        if (!IsRepresentable(validFrom) || !IsRepresentable(expiresAt) || !IsRepresentable(publishedAt) || expiresAt < validFrom)
        {
            return DescriptorError.Malformed;
        }

        var cellSize = BinaryPrimitives.ReadUInt32BigEndian(encoded[(position + 6)..]);
        if (cellSize > int.MaxValue)
        {
            return DescriptorError.Malformed;
        }

        if (!TryParseEndpoint(encoded.Slice(endpointOffset, endpointLength), out var endpoint))
        {
            return DescriptorError.InvalidEndpoint;
        }

        var copy = encoded.ToArray();
        var parsed = new NodeDescriptor(copy)
        {
            Id = id,
            OnionKey = copy.AsMemory(OnionKeyOffset, Identity.OnionKey.PublicKeySize),
            OnionEpoch = BinaryPrimitives.ReadUInt32BigEndian(encoded[EpochOffset..]),
            OnionValidFrom = DateTimeOffset.FromUnixTimeSeconds(validFrom),
            OnionExpiresAt = DateTimeOffset.FromUnixTimeSeconds(expiresAt),
            PublishedAt = DateTimeOffset.FromUnixTimeSeconds(publishedAt),
            ProtocolVersions = [.. encoded.Slice(ProtocolsOffset, versionCount)],
            Features = (DescriptorFeatures)BinaryPrimitives.ReadUInt32BigEndian(encoded[position..]),
            Network = new NetworkParameters
            {
                MaxRelays = BinaryPrimitives.ReadUInt16BigEndian(encoded[(position + 4)..]),
                CellSize = (int)cellSize,
                Construction = (CellConstruction)encoded[position + 10],
                MaxDeadlineClass = (DeadlineClass)encoded[position + 11],
                IdleTimeout = TimeSpan.FromSeconds(BinaryPrimitives.ReadUInt16BigEndian(encoded[(position + 12)..])),
            },
            Endpoint = endpoint,
        };
        var error = validation is { } v ? parsed.Validate(v.Expected, v.Now, v.ClockSkew) : DescriptorError.None;
        if (error == DescriptorError.None && !Verify(id, encoded[..signatureOffset], encoded[signatureOffset..]))
        {
            error = DescriptorError.BadSignature;
        }

        descriptor = error == DescriptorError.None ? parsed : null;
        return error;
    }

    /// <summary>
    /// True when <paramref name="endpoint"/> has the only form a descriptor carries:
    /// scheme://host:port (http or https, an explicit port, no path but "/", no query, fragment or user info).
    /// </summary>
    public static bool IsEndpointForm(Uri endpoint)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        return endpoint.IsAbsoluteUri && IsAcceptableEndpoint(endpoint, endpoint.OriginalString);
    }

    /// <summary>
    /// True when <paramref name="publicKey"/> is an X25519 key a header can be built to: 32 bytes,
    /// canonical (top bit clear, u below p) and not of small order.
    /// </summary>
    public static bool IsUsableOnionKey(ReadOnlySpan<byte> publicKey) =>
        publicKey.Length == Identity.OnionKey.PublicKeySize && CheckOnionKey(publicKey) == DescriptorError.None;

    // A small-order point makes every shared secret zero (the header build refuses it, for every
    // route through the node); two encodings of one key would let a node appear twice.
    private static DescriptorError CheckOnionKey(ReadOnlySpan<byte> key)
    {
        if ((key[31] & 0x80) != 0 || IsAtLeastFieldPrime(key))
        {
            return DescriptorError.NonCanonicalOnionKey;
        }

        foreach (var point in LowOrderPoints)
        {
            if (key.SequenceEqual(point))
            {
                return DescriptorError.LowOrderOnionKey;
            }
        }

        return DescriptorError.None;
    }

    // u >= p = 2^255 - 19 (little-endian, top bit already clear): ed..ff ff ... ff 7f.
    private static bool IsAtLeastFieldPrime(ReadOnlySpan<byte> key) =>
        key[0] >= 0xed && key[31] == 0x7f && !key[1..31].ContainsAnyExcept((byte)0xff);

    /// <summary>
    /// Checks that the node can be used by a node of network <paramref name="expected"/> at
    /// <paramref name="now"/>: same network parameters, a common protocol version, and an onion
    /// key that is valid, allowing <paramref name="clockSkew"/> either way.
    /// </summary>
    public DescriptorError Validate(NetworkParameters expected, DateTimeOffset now, TimeSpan clockSkew)
    {
        ArgumentNullException.ThrowIfNull(expected);
        ArgumentOutOfRangeException.ThrowIfLessThan(clockSkew, TimeSpan.Zero);
        if (!Network.Equals(expected))
        {
            return DescriptorError.NetworkMismatch;
        }

        if (!ProtocolVersions.Contains(ProtocolVersion))
        {
            return DescriptorError.NoCommonProtocolVersion;
        }

        // Differences, not now ± skew: a hostile timestamp near DateTimeOffset's limits must not throw.
        if (now - OnionExpiresAt > clockSkew)
        {
            return DescriptorError.Expired;
        }

        if (OnionValidFrom - now > clockSkew || PublishedAt - now > clockSkew)
        {
            return DescriptorError.NotYetValid;
        }

        return DescriptorError.None;
    }

    /// <summary>The route hop for building headers to this node's onion key.</summary>
    public RouteHop ToRouteHop() => new(Id, OnionEpoch, OnionKey);

    /// <inheritdoc />
    public override string ToString() => $"descriptor of node {Id.ToShortString()}, onion epoch {OnionEpoch}, at {Endpoint}";

    /// <summary>Signs <paramref name="signed"/> (the bytes before the signature) in the descriptor's context.</summary>
    internal static void Sign(NodeIdentity identity, ReadOnlySpan<byte> signed, Span<byte> signature)
    {
        Span<byte> message = stackalloc byte[SignatureContext.Length + MaxSize];
        SignatureContext.CopyTo(message);
        signed.CopyTo(message[SignatureContext.Length..]);
        identity.Sign(message[..(SignatureContext.Length + signed.Length)], signature);
    }

    private static bool Verify(NodeId id, ReadOnlySpan<byte> signed, ReadOnlySpan<byte> signature)
    {
        Span<byte> message = stackalloc byte[SignatureContext.Length + MaxSize];
        SignatureContext.CopyTo(message);
        signed.CopyTo(message[SignatureContext.Length..]);
        return NodeIdentity.Verify(id, message[..(SignatureContext.Length + signed.Length)], signature);
    }

    private static bool IsRepresentable(long unixSeconds) => unixSeconds >= MinUnixSeconds && unixSeconds <= MaxUnixSeconds;

    // Only scheme://host:port[/]: a path, query or user info would let a descriptor make every node
    // send requests of its choosing to any web server it can name (docs/protocol.md §4).
    private static bool IsAcceptableEndpoint(Uri uri, string text) =>
        uri.IsAbsoluteUri
        && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps)
        && !string.IsNullOrEmpty(uri.Host)
        && string.IsNullOrEmpty(uri.UserInfo)
        && uri.AbsolutePath == "/"
        && string.IsNullOrEmpty(uri.Query)
        && string.IsNullOrEmpty(uri.Fragment)
        && uri.Port is > 0 and <= ushort.MaxValue
        && HasOnlyAuthority(text);

    // The text after "scheme://" is host:port with at most a trailing '/', and the port is written out.
    private static bool HasOnlyAuthority(string text)
    {
        var start = text.IndexOf("://", StringComparison.Ordinal);
        if (start < 0)
        {
            return false;
        }

        var authority = text.AsSpan(start + 3);
        if (authority.EndsWith('/'))
        {
            authority = authority[..^1];
        }

        if (authority.IndexOfAny("/\\?#@") >= 0)
        {
            return false;
        }

        var colon = authority.LastIndexOf(':');
        var port = colon < 0 ? [] : authority[(colon + 1)..];
        return colon > authority.LastIndexOf(']') && port.Length is >= 1 and <= 5 && !port.ContainsAnyExceptInRange('0', '9');
    }

    /// <summary>Reads a signed endpoint: UTF-8 scheme://host:port, 1 to 255 bytes, exactly as written (no trimming).</summary>
    internal static bool TryParseEndpoint(ReadOnlySpan<byte> utf8, out Uri endpoint)
    {
        endpoint = null!;
        if (utf8.Length is < 1 or > MaxEndpointLength || !Utf8.IsValid(utf8))
        {
            return false;
        }

        var text = Encoding.UTF8.GetString(utf8);
        foreach (var c in text)
        {
            // Uri would trim surrounding white space and drop some controls: refuse them instead,
            // so what was signed is what is used.
            if (char.IsWhiteSpace(c) || char.IsControl(c))
            {
                return false;
            }
        }

        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || !IsAcceptableEndpoint(uri, text))
        {
            return false;
        }

        endpoint = uri;
        return true;
    }
}
