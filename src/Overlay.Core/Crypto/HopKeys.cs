using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Overlay.Crypto;

/// <summary>
/// The per-tunnel keys one hop shares with the origin, derived from one X25519 shared secret:
/// <c>PRK = HKDF-Extract(salt = "overlay/v1", secret)</c>, then one HKDF-Expand per purpose with
/// its own label. The bytes live in one pooled buffer that is zeroed when the tunnel closes
/// (no NSec <c>Key</c> objects per tunnel: each maps, locks and guards memory of its own with several system calls).
/// </summary>
internal sealed class HopKeys : IDisposable
{
    public const int KeySize = 32;
    public const int ReplayTagSize = 16;

    private const int HeaderMacOffset = 0;
    private const int HeaderStreamOffset = 32;
    private const int ForwardLayerOffset = 64;
    private const int BackwardLayerOffset = 96;
    private const int ForwardMacOffset = 128;
    private const int ForwardSealOffset = 160;
    private const int BackwardSealOffset = 192;
    private const int TraceOffset = 224;
    private const int ReplayTagOffset = 256;
    private const int TotalSize = 272;

    private byte[]? _buffer;

    private HopKeys(byte[] buffer) => _buffer = buffer;

    public static ReadOnlySpan<byte> Salt => "overlay/v1"u8;

    /// <summary>Labels, one per purpose; see docs/protocol.md "Key schedule".</summary>
    public static ReadOnlySpan<byte> HeaderMacLabel => "overlay/v1 header mac"u8;
    public static ReadOnlySpan<byte> HeaderStreamLabel => "overlay/v1 header stream"u8;
    public static ReadOnlySpan<byte> ForwardLayerLabel => "overlay/v1 forward layer"u8;
    public static ReadOnlySpan<byte> BackwardLayerLabel => "overlay/v1 backward layer"u8;
    public static ReadOnlySpan<byte> ForwardMacLabel => "overlay/v1 forward mac"u8;
    public static ReadOnlySpan<byte> ForwardSealLabel => "overlay/v1 forward seal"u8;
    public static ReadOnlySpan<byte> BackwardSealLabel => "overlay/v1 backward seal"u8;
    public static ReadOnlySpan<byte> TraceLabel => "overlay/v1 trace"u8;
    public static ReadOnlySpan<byte> ReplayTagLabel => "overlay/v1 replay tag"u8;

    /// <summary>MAC key for this hop's header slot.</summary>
    public ReadOnlySpan<byte> HeaderMac => Slice(HeaderMacOffset, KeySize);

    /// <summary>AES-CTR key that encrypts this hop's view of the routing block.</summary>
    public ReadOnlySpan<byte> HeaderStream => Slice(HeaderStreamOffset, KeySize);

    /// <summary>AES-CTR key of this relay's forward cell layer.</summary>
    public ReadOnlySpan<byte> ForwardLayer => Slice(ForwardLayerOffset, KeySize);

    /// <summary>AES-CTR key of this relay's backward cell layer.</summary>
    public ReadOnlySpan<byte> BackwardLayer => Slice(BackwardLayerOffset, KeySize);

    /// <summary>HMAC key of this hop's entry in the forward MAC array.</summary>
    public ReadOnlySpan<byte> ForwardMac => Slice(ForwardMacOffset, KeySize);

    /// <summary>AES-GCM key of forward cells (used when this hop is the destination).</summary>
    public ReadOnlySpan<byte> ForwardSeal => Slice(ForwardSealOffset, KeySize);

    /// <summary>AES-GCM key of backward cells this hop originates (replies, error cells).</summary>
    public ReadOnlySpan<byte> BackwardSeal => Slice(BackwardSealOffset, KeySize);

    /// <summary>Reserved for deriving this hop's trace id.</summary>
    public ReadOnlySpan<byte> Trace => Slice(TraceOffset, KeySize);

    /// <summary>This hop's private trace id and parent span id, derived from <see cref="Trace"/>.</summary>
    public HopTraceContext TraceContext => HopTraceContext.Derive(Trace);

    /// <summary>The replay-cache tag of the header (derived from the secret, never from the ephemeral key).</summary>
    public UInt128 ReplayTag => BinaryPrimitives.ReadUInt128BigEndian(Slice(ReplayTagOffset, ReplayTagSize));

    /// <summary>Derives all keys from an X25519 shared secret.</summary>
    public static HopKeys Derive(ReadOnlySpan<byte> sharedSecret)
    {
        Span<byte> prk = stackalloc byte[32];
        try
        {
            HKDF.Extract(HashAlgorithmName.SHA256, sharedSecret, Salt, prk);
            return Expand(prk);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(prk);
        }
    }

    /// <summary>
    /// The keys of a reply block's replier (docs/protocol.md §7.8): only the two seal keys of the hop the
    /// block delivers to, the others zero (a replier adds no layer and checks no MAC).
    /// </summary>
    public static HopKeys FromSealKeys(ReadOnlySpan<byte> forwardSeal, ReadOnlySpan<byte> backwardSeal)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(TotalSize);
        buffer.AsSpan(0, TotalSize).Clear();
        forwardSeal.CopyTo(buffer.AsSpan(ForwardSealOffset, KeySize));
        backwardSeal.CopyTo(buffer.AsSpan(BackwardSealOffset, KeySize));
        return new HopKeys(buffer);
    }

    private static HopKeys Expand(ReadOnlySpan<byte> prk)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(TotalSize);
        var span = buffer.AsSpan();
        HKDF.Expand(HashAlgorithmName.SHA256, prk, span.Slice(HeaderMacOffset, KeySize), HeaderMacLabel);
        HKDF.Expand(HashAlgorithmName.SHA256, prk, span.Slice(HeaderStreamOffset, KeySize), HeaderStreamLabel);
        HKDF.Expand(HashAlgorithmName.SHA256, prk, span.Slice(ForwardLayerOffset, KeySize), ForwardLayerLabel);
        HKDF.Expand(HashAlgorithmName.SHA256, prk, span.Slice(BackwardLayerOffset, KeySize), BackwardLayerLabel);
        HKDF.Expand(HashAlgorithmName.SHA256, prk, span.Slice(ForwardMacOffset, KeySize), ForwardMacLabel);
        HKDF.Expand(HashAlgorithmName.SHA256, prk, span.Slice(ForwardSealOffset, KeySize), ForwardSealLabel);
        HKDF.Expand(HashAlgorithmName.SHA256, prk, span.Slice(BackwardSealOffset, KeySize), BackwardSealLabel);
        HKDF.Expand(HashAlgorithmName.SHA256, prk, span.Slice(TraceOffset, KeySize), TraceLabel);
        HKDF.Expand(HashAlgorithmName.SHA256, prk, span.Slice(ReplayTagOffset, ReplayTagSize), ReplayTagLabel);
        return new HopKeys(buffer);
    }

    private ReadOnlySpan<byte> Slice(int offset, int length)
    {
        ObjectDisposedException.ThrowIf(_buffer is null, this);
        return _buffer.AsSpan(offset, length);
    }

    public void Dispose()
    {
        var buffer = Interlocked.Exchange(ref _buffer, null);
        if (buffer is not null)
        {
            CryptographicOperations.ZeroMemory(buffer.AsSpan(0, TotalSize));
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
