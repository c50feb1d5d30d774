using System.Buffers.Binary;
using System.Security.Cryptography;
using Overlay.Crypto;
using Overlay.Onion;

namespace Overlay.Replies;

/// <summary>
/// What a reply block's maker keeps to receive the reply (docs/protocol.md §7.8): the block's reply
/// id, its expiry, and every relay's forward and backward layer key of the reply route. It must
/// outlive a restart, or the reply is lost, so it encodes for the node's key directory; dispose it
/// (the keys are zeroed) once the reply came or the block expired.
/// </summary>
public sealed class ReplyBlockSecret : IDisposable
{
    /// <summary>Bytes of the reply id.</summary>
    public const int ReplyIdSize = 16;

    private const int FixedSize = ReplyIdSize + 8 + 1;
    private const int LayerPairSize = 2 * HopKeys.KeySize;

    // Pinned so the GC never leaves a copy of the keys behind; zeroed on dispose.
    private readonly byte[] _layers;
    private int _disposed;

    private ReplyBlockSecret(ReadOnlySpan<byte> replyId, DateTimeOffset expiresAt, int relays)
    {
        ReplyId = replyId.ToArray();
        ExpiresAt = expiresAt;
        RelayCount = relays;
        _layers = GC.AllocateArray<byte>(relays * LayerPairSize, pinned: true);
    }

    /// <summary>The block's id: the header's reply-id field, which only the maker reads.</summary>
    public ReadOnlyMemory<byte> ReplyId { get; }

    /// <summary>When the block stops being valid (the same instant as its <see cref="ReplyBlock.ExpiresAt"/>).</summary>
    public DateTimeOffset ExpiresAt { get; }

    /// <summary>Relays on the reply route.</summary>
    public int RelayCount { get; }

    internal static ReplyBlockSecret Create(ReadOnlySpan<byte> replyId, DateTimeOffset expiresAt, OriginTunnelKeys keys)
    {
        var secret = new ReplyBlockSecret(replyId, expiresAt, keys.RelayCount);
        for (var i = 0; i < keys.RelayCount; i++)
        {
            keys.Hops[i].ForwardLayer.CopyTo(secret._layers.AsSpan(i * LayerPairSize));
            keys.Hops[i].BackwardLayer.CopyTo(secret._layers.AsSpan((i * LayerPairSize) + HopKeys.KeySize));
        }

        return secret;
    }

    /// <summary>The encoded secret, for the node's key directory (owner-only files): it holds keys.</summary>
    public byte[] Encode()
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        var encoded = new byte[FixedSize + _layers.Length];
        ReplyId.Span.CopyTo(encoded);
        BinaryPrimitives.WriteInt64BigEndian(encoded.AsSpan(ReplyIdSize), ExpiresAt.ToUnixTimeSeconds());
        encoded[ReplyIdSize + 8] = (byte)RelayCount;
        _layers.CopyTo(encoded.AsSpan(FixedSize));
        return encoded;
    }

    /// <summary>Reads an encoded secret; false if it is not one.</summary>
    public static bool TryDecode(ReadOnlySpan<byte> encoded, out ReplyBlockSecret? secret)
    {
        secret = null;
        if (encoded.Length < FixedSize)
        {
            return false;
        }

        var relays = encoded[ReplyIdSize + 8];
        var expires = BinaryPrimitives.ReadInt64BigEndian(encoded[ReplyIdSize..]);
        if (encoded.Length != FixedSize + (relays * LayerPairSize) || expires is < 0 or > 253402300799
            || encoded[..ReplyIdSize].IndexOfAnyExcept((byte)0) < 0)
        {
            return false;
        }

        secret = new ReplyBlockSecret(encoded[..ReplyIdSize], DateTimeOffset.FromUnixTimeSeconds(expires), relays);
        encoded[FixedSize..].CopyTo(secret._layers);
        return true;
    }

    /// <summary>True when <paramref name="replyId"/> is this block's id (compared in constant time).</summary>
    public bool Matches(ReadOnlySpan<byte> replyId) => CryptographicOperations.FixedTimeEquals(replyId, ReplyId.Span);

    internal ReplyRouteLayers CreateLayers()
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        var forward = new AesCtr[RelayCount];
        var backward = new AesCtr[RelayCount];
        try
        {
            for (var i = 0; i < RelayCount; i++)
            {
                forward[i] = new AesCtr(_layers.AsSpan(i * LayerPairSize, HopKeys.KeySize));
                backward[i] = new AesCtr(_layers.AsSpan((i * LayerPairSize) + HopKeys.KeySize, HopKeys.KeySize));
            }
        }
        catch
        {
            // No layer key outlives a failed build.
            new ReplyRouteLayers(forward, backward).Dispose();
            throw;
        }

        return new ReplyRouteLayers(forward, backward);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            CryptographicOperations.ZeroMemory(_layers);
        }
    }
}
