using System.Buffers.Binary;
using System.Security.Cryptography;
using Overlay.Cells;
using Overlay.Crypto;
using Overlay.Errors;
using Overlay.Identity;
using Overlay.Onion;
using Overlay.Protocol;

namespace Overlay.Replies;

/// <summary>
/// A single-use reply block (docs/protocol.md §7.8): a header for a route that ends at the block's
/// maker, with the two keys its holder needs to send one reply over it and read the receipt. The
/// holder learns neither who made it nor where that node is, beyond the first relay it must dial.
/// The block carries secret keys: dispose it when done.
/// </summary>
public sealed class ReplyBlock : IDisposable
{
    /// <summary>The format version this code writes and reads.</summary>
    public const byte FormatVersion = 1;

    /// <summary>The bytes before the header.</summary>
    public const int FixedSize = 1 + NodeId.Size + 8 + 2 * HopKeys.KeySize;

    private const int FirstHopOffset = 1;
    private const int ExpiresOffset = FirstHopOffset + NodeId.Size;
    private const int SealKeyOffset = ExpiresOffset + 8;
    private const int ReceiptKeyOffset = SealKeyOffset + HopKeys.KeySize;

    // Pinned so the GC never leaves a copy of the keys behind; zeroed on dispose.
    private readonly byte[] _keys = GC.AllocateArray<byte>(2 * HopKeys.KeySize, pinned: true);
    private int _disposed;

    private ReplyBlock(NodeId firstHop, DateTimeOffset expiresAt, ReadOnlySpan<byte> sealKey, ReadOnlySpan<byte> receiptKey, byte[] header)
    {
        FirstHop = firstHop;
        ExpiresAt = expiresAt;
        sealKey.CopyTo(_keys);
        receiptKey.CopyTo(_keys.AsSpan(HopKeys.KeySize));
        Header = header;
    }

    /// <summary>The node the holder sends the header to: the reply route's first relay (the maker itself when the route has none).</summary>
    public NodeId FirstHop { get; }

    /// <summary>After this instant the block is refused: the earliest onion-key expiry of its route, or sooner if its maker chose.</summary>
    public DateTimeOffset ExpiresAt { get; }

    /// <summary>The header the reply travels under.</summary>
    public ReadOnlyMemory<byte> Header { get; }

    /// <summary>The encoded size of a block on a network with <paramref name="parameters"/>.</summary>
    public static int SizeFor(NetworkParameters parameters) => FixedSize + OnionHeader.SizeFor(parameters);

    internal static ReplyBlock Create(NodeId firstHop, DateTimeOffset expiresAt, ReadOnlySpan<byte> sealKey, ReadOnlySpan<byte> receiptKey, byte[] header) =>
        new(firstHop, expiresAt, sealKey, receiptKey, header);

    /// <summary>The encoded block (it holds the keys: treat it as a secret of whoever may reply).</summary>
    public byte[] Encode()
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        var encoded = new byte[FixedSize + Header.Length];
        encoded[0] = FormatVersion;
        FirstHop.CopyTo(encoded.AsSpan(FirstHopOffset, NodeId.Size));
        BinaryPrimitives.WriteInt64BigEndian(encoded.AsSpan(ExpiresOffset), ExpiresAt.ToUnixTimeSeconds());
        _keys.CopyTo(encoded.AsSpan(SealKeyOffset));
        Header.Span.CopyTo(encoded.AsSpan(FixedSize));
        return encoded;
    }

    /// <summary>
    /// Reads a block for a network with <paramref name="parameters"/>: <see cref="TunnelErrorKind.Malformed"/> for a
    /// wrong size, version or first hop, <see cref="TunnelErrorKind.Expired"/> at or after its expiry.
    /// </summary>
    public static TunnelErrorKind TryParse(ReadOnlySpan<byte> encoded, NetworkParameters parameters, DateTimeOffset now, out ReplyBlock? block)
    {
        block = null;
        if (encoded.Length != SizeFor(parameters) || encoded[0] != FormatVersion)
        {
            return TunnelErrorKind.Malformed;
        }

        var firstHop = new NodeId(encoded.Slice(FirstHopOffset, NodeId.Size));
        var expires = BinaryPrimitives.ReadInt64BigEndian(encoded[ExpiresOffset..]);
        if (firstHop.IsNone || expires is < 0 or > 253402300799)
        {
            return TunnelErrorKind.Malformed;
        }

        var expiresAt = DateTimeOffset.FromUnixTimeSeconds(expires);
        if (now >= expiresAt)
        {
            return TunnelErrorKind.Expired;
        }

        block = new ReplyBlock(firstHop, expiresAt, encoded.Slice(SealKeyOffset, HopKeys.KeySize), encoded.Slice(ReceiptKeyOffset, HopKeys.KeySize), encoded[FixedSize..].ToArray());
        return TunnelErrorKind.None;
    }

    /// <summary>
    /// The holder's codec: seals the reply's cells end to end (no relay layers: the relays add theirs)
    /// and opens the maker's receipt. It works like an origin's codec for a route without relays.
    /// </summary>
    /// <exception cref="TunnelException"><see cref="TunnelErrorKind.Expired"/> at or after <see cref="ExpiresAt"/>: a block parsed in time may be used too late.</exception>
    public OriginCellCodec CreateCodec(NetworkParameters parameters, DateTimeOffset now)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        if (now >= ExpiresAt)
        {
            throw new TunnelException(TunnelErrorKind.Expired, 0, $"the reply block expired at {ExpiresAt:O}");
        }

        if (parameters.Construction != CellConstruction.Baseline)
        {
            throw new InvalidOperationException("reply blocks need the Baseline cell construction (docs/protocol.md §7.8)");
        }

        var keys = HopKeys.FromSealKeys(_keys.AsSpan(0, HopKeys.KeySize), _keys.AsSpan(HopKeys.KeySize));
        return new OriginCellCodec(parameters, new OriginTunnelKeys([keys]));
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            CryptographicOperations.ZeroMemory(_keys);
        }
    }
}
