using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
using Overlay.Cells;
using Overlay.Crypto;
using Overlay.Errors;
using Overlay.Identity;
using Overlay.Protocol;

namespace Overlay.Onion;

/// <summary>What a hop does with a header.</summary>
public enum HeaderOutcome
{
    /// <summary>Refused; <see cref="HeaderResult.Rejection"/> says why.</summary>
    Rejected,

    /// <summary>Forward <see cref="HeaderResult.NextHop"/> the outgoing header written by the processor.</summary>
    Relay,

    /// <summary>This node is the destination.</summary>
    Deliver,
}

/// <summary>
/// The result of processing one header: exactly one of relay, deliver or a typed rejection.
/// Owns the hop's per-tunnel keys until a cell codec takes them; dispose it either way.
/// </summary>
public sealed class HeaderResult : IDisposable
{
    private HopKeys? _keys;

    private HeaderResult(HeaderOutcome outcome, TunnelErrorKind rejection, HopKeys? keys)
    {
        Outcome = outcome;
        Rejection = rejection;
        _keys = keys;
    }

    /// <summary>Relay, deliver or rejected.</summary>
    public HeaderOutcome Outcome { get; }

    /// <summary>Why the header was refused (<see cref="TunnelErrorKind.None"/> otherwise).</summary>
    public TunnelErrorKind Rejection { get; }

    /// <summary>The onion-key epoch the header was processed under.</summary>
    public uint Epoch { get; private init; }

    /// <summary>The next hop, for <see cref="HeaderOutcome.Relay"/>.</summary>
    public NodeId NextHop { get; private init; }

    /// <summary>The destination's mode, for <see cref="HeaderOutcome.Deliver"/>.</summary>
    public TunnelMode Mode { get; private init; }

    /// <summary>The service the origin named at the destination, for <see cref="HeaderOutcome.Deliver"/>; null is the default service.</summary>
    public string? Service { get; private init; }

    /// <summary>For <see cref="TunnelMode.ReplyBlock"/>: the 16-byte id of the reply block this header belongs to (empty otherwise).</summary>
    public ReadOnlyMemory<byte> ReplyId { get; private init; }

    /// <summary>For a one-way <see cref="HeaderOutcome.Deliver"/>: the message starts with a reply block for this node to answer over (docs/protocol.md §7.8).</summary>
    public bool ReplyBlockAttached { get; private init; }

    /// <summary>The tunnel's coarse deadline, the same at every hop.</summary>
    public DeadlineClass Deadline { get; private init; }

    /// <summary>The sealed trace context the origin put in this hop's slot, if any (32 bytes).</summary>
    public ReadOnlyMemory<byte> SealedTraceContext { get; private init; }

    /// <summary>This hop's private trace coordinates (default for a rejected header).</summary>
    public HopTraceContext TraceContext { get; private init; }

    /// <summary>Creates the relay's cell codec; the keys move into it.</summary>
    public RelayCellCodec CreateRelayCodec(NetworkParameters parameters)
    {
        if (Outcome != HeaderOutcome.Relay)
        {
            throw new InvalidOperationException("not a relay header");
        }

        return new RelayCellCodec(parameters, TakeKeys());
    }

    /// <summary>Creates the destination's cell codec; the keys move into it.</summary>
    /// <param name="parameters">The network's parameters.</param>
    /// <param name="replyRoute">For a reply-block header: the block's secret, whose relay layers the codec removes from forward cells and puts back on backward ones.</param>
    public DestinationCellCodec CreateDestinationCodec(NetworkParameters parameters, Replies.ReplyBlockSecret? replyRoute = null)
    {
        if (Outcome != HeaderOutcome.Deliver)
        {
            throw new InvalidOperationException("not a delivery header");
        }

        if ((Mode == TunnelMode.ReplyBlock) != (replyRoute is not null))
        {
            throw new InvalidOperationException("a reply-block header needs its block's secret, and only it takes one");
        }

        return new DestinationCellCodec(parameters, TakeKeys(), replyRoute?.CreateLayers());
    }

    internal HopKeys TakeKeys() =>
        Interlocked.Exchange(ref _keys, null) ?? throw new InvalidOperationException("the keys were already taken");

    internal static HeaderResult Reject(TunnelErrorKind kind) => new(HeaderOutcome.Rejected, kind, null);

    internal static HeaderResult Relay(HopKeys keys, uint epoch, NodeId next, DeadlineClass deadline, ReadOnlyMemory<byte> trace) =>
        new(HeaderOutcome.Relay, TunnelErrorKind.None, keys) { Epoch = epoch, NextHop = next, Deadline = deadline, SealedTraceContext = trace, TraceContext = keys.TraceContext };

    internal static HeaderResult Deliver(HopKeys keys, uint epoch, TunnelMode mode, DeadlineClass deadline, ReadOnlyMemory<byte> trace, string? service, ReadOnlyMemory<byte> replyId, bool replyBlockAttached) =>
        new(HeaderOutcome.Deliver, TunnelErrorKind.None, keys)
        {
            Epoch = epoch, Mode = mode, Deadline = deadline, SealedTraceContext = trace, TraceContext = keys.TraceContext, Service = service, ReplyId = replyId,
            ReplyBlockAttached = replyBlockAttached,
        };

    /// <inheritdoc />
    public void Dispose() => Interlocked.Exchange(ref _keys, null)?.Dispose();
}

/// <summary>
/// Processes headers at a hop: size, version and epoch, then the X25519 agreement, then the MAC
/// (in constant time) before anything else is trusted, then the replay cache, then the slot.
/// Never throws on hostile input: every failure is a typed rejection.
/// </summary>
public sealed class OnionHeaderProcessor
{
    private readonly HeaderLayout _layout;
    private readonly OnionKeyRing _keys;

    /// <summary>Creates a processor over a node's onion keys.</summary>
    public OnionHeaderProcessor(NetworkParameters parameters, OnionKeyRing keys)
    {
        Parameters = parameters.EnsureValid();
        _layout = new HeaderLayout(parameters);
        _keys = keys;
    }

    /// <summary>The network this processor serves.</summary>
    public NetworkParameters Parameters { get; }

    /// <summary>The size of every header.</summary>
    public int HeaderSize => _layout.Size;

    /// <summary>
    /// Processes <paramref name="header"/>. For <see cref="HeaderOutcome.Relay"/>, the header for the
    /// next hop (same size) is written to <paramref name="nextHeader"/>.
    /// </summary>
    public HeaderResult Process(ReadOnlySpan<byte> header, Span<byte> nextHeader)
    {
        if (header.Length != _layout.Size)
        {
            return HeaderResult.Reject(TunnelErrorKind.Malformed);
        }

        if (header[HeaderLayout.VersionOffset] != HeaderLayout.Version)
        {
            return HeaderResult.Reject(TunnelErrorKind.UnsupportedVersion);
        }

        var epoch = BinaryPrimitives.ReadUInt32BigEndian(header[HeaderLayout.EpochOffset..]);
        if (_keys.Find(epoch) is not { } onion)
        {
            return HeaderResult.Reject(TunnelErrorKind.UnknownEpoch);
        }

        var alpha = header.Slice(HeaderLayout.AlphaOffset, HeaderLayout.KeySize);
        if ((alpha[31] & 0x80) != 0 || IsNonCanonical(alpha))
        {
            // X25519 ignores the top bit and would agree anyway: two encodings, one secret.
            // Likewise u >= p is the same point as u - p.
            return HeaderResult.Reject(TunnelErrorKind.Malformed);
        }

        HopKeys keys;
        Span<byte> shared = stackalloc byte[HeaderLayout.KeySize];
        try
        {
            if (!Sodium.ScalarMult(shared, onion.Key.PrivateKey, alpha))
            {
                return HeaderResult.Reject(TunnelErrorKind.Malformed); // low-order point
            }

            keys = HopKeys.Derive(shared);
        }
        catch (ObjectDisposedException)
        {
            return HeaderResult.Reject(TunnelErrorKind.UnknownEpoch); // retired while we looked
        }
        finally
        {
            CryptographicOperations.ZeroMemory(shared);
        }

        try
        {
            return ProcessWithKeys(header, nextHeader, epoch, onion, keys);
        }
        catch
        {
            keys.Dispose();
            throw;
        }
    }

    // The slot's fields per command (docs/protocol.md §6.1): every byte the command does not use must be
    // zero, or a predecessor's origin could hide a mark in it for this hop to read.
    private TunnelErrorKind CheckSlot(ReadOnlySpan<byte> slot, out DeadlineClass deadline, out string? service)
    {
        deadline = (DeadlineClass)slot[HeaderLayout.SlotDeadline];
        service = null;
        var flags = slot[HeaderLayout.SlotFlags];
        if ((flags & ~(HeaderLayout.FlagSealedTrace | HeaderLayout.FlagReplyBlockAttached)) != 0
            || slot[HeaderLayout.SlotReserved..].IndexOfAnyExcept((byte)0) >= 0
            || ((flags & HeaderLayout.FlagSealedTrace) == 0 && slot.Slice(HeaderLayout.SlotTrace, HeaderLayout.SlotTraceSize).IndexOfAnyExcept((byte)0) >= 0)
            || !DeadlineClasses.IsDefined(deadline) || deadline > Parameters.MaxDeadlineClass)
        {
            return TunnelErrorKind.Malformed;
        }

        switch (slot[HeaderLayout.SlotCommand])
        {
            case HeaderLayout.CommandRelay:
                return slot[HeaderLayout.SlotMode] == 0 && (flags & HeaderLayout.FlagReplyBlockAttached) == 0 && !new NodeId(slot.Slice(HeaderLayout.SlotNextId, NodeId.Size)).IsNone
                    ? TunnelErrorKind.None
                    : TunnelErrorKind.Malformed;

            case HeaderLayout.CommandDeliver:
                var mode = (TunnelMode)slot[HeaderLayout.SlotMode];
                if ((flags & HeaderLayout.FlagReplyBlockAttached) != 0 && mode != TunnelMode.OneWay)
                {
                    return TunnelErrorKind.Malformed;
                }

                if ((flags & HeaderLayout.FlagReplyBlockAttached) != 0 && Parameters.Construction != CellConstruction.Baseline)
                {
                    return TunnelErrorKind.UnsupportedVersion;
                }

                if (mode == TunnelMode.ReplyBlock)
                {
                    // A replier holds no hop keys, so it cannot build the MAC array: reply blocks exist on Baseline networks only.
                    if (Parameters.Construction != CellConstruction.Baseline)
                    {
                        return TunnelErrorKind.UnsupportedVersion;
                    }

                    return slot.Slice(HeaderLayout.SlotService, HeaderLayout.SlotServiceSize).IndexOfAnyExcept((byte)0) < 0
                        && slot.Slice(HeaderLayout.SlotReplyId, HeaderLayout.SlotReplyIdSize).IndexOfAnyExcept((byte)0) >= 0
                        && slot[HeaderLayout.SlotDeliverUnused..HeaderLayout.SlotTrace].IndexOfAnyExcept((byte)0) < 0
                        ? TunnelErrorKind.None
                        : TunnelErrorKind.Malformed;
                }

                if (mode is not (TunnelMode.Duplex or TunnelMode.OneWay)
                    || slot[HeaderLayout.SlotReplyId..HeaderLayout.SlotTrace].IndexOfAnyExcept((byte)0) >= 0
                    || !TryReadService(slot.Slice(HeaderLayout.SlotService, HeaderLayout.SlotServiceSize), out service))
                {
                    return TunnelErrorKind.Malformed;
                }

                return TunnelErrorKind.None;

            default:
                return TunnelErrorKind.Malformed;
        }
    }

    // A name of 1..32 bytes of UTF-8, then zeros; all zeros is the default service (null).
    private static bool TryReadService(ReadOnlySpan<byte> field, out string? service)
    {
        service = null;
        var length = field.IndexOf((byte)0);
        length = length < 0 ? field.Length : length;
        if (field[length..].IndexOfAnyExcept((byte)0) >= 0 || !System.Text.Unicode.Utf8.IsValid(field[..length]))
        {
            return false;
        }

        service = length == 0 ? null : System.Text.Encoding.UTF8.GetString(field[..length]);
        return true;
    }

    // u >= p = 2^255 - 19, little-endian, top bit already clear: ed ff .. ff 7f and above.
    private static bool IsNonCanonical(ReadOnlySpan<byte> u) =>
        u[31] == 0x7f && u[1..31].IndexOfAnyExcept((byte)0xff) < 0 && u[0] >= 0xed;

    private HeaderResult ProcessWithKeys(ReadOnlySpan<byte> header, Span<byte> nextHeader, uint epoch, OnionKeyEpoch onion, HopKeys keys)
    {
        Span<byte> gamma = stackalloc byte[HeaderLayout.MacSize];
        HeaderLayout.ComputeMac(keys.HeaderMac, header[.._layout.GammaOffset], gamma);
        if (!CryptographicOperations.FixedTimeEquals(gamma, header.Slice(_layout.GammaOffset, HeaderLayout.MacSize)))
        {
            keys.Dispose();
            return HeaderResult.Reject(TunnelErrorKind.Tampered);
        }

        switch (onion.ReplayCache.TryAdd(keys.ReplayTag))
        {
            case ReplayCheck.Replayed:
                keys.Dispose();
                return HeaderResult.Reject(TunnelErrorKind.Replayed);
            case ReplayCheck.Full:
                keys.Dispose();
                return HeaderResult.Reject(TunnelErrorKind.Busy);
        }

        const int S = HeaderLayout.SlotSize;
        var plainLength = (_layout.SlotCount + 1) * S;
        var plain = ArrayPool<byte>.Shared.Rent(plainLength);
        try
        {
            var span = plain.AsSpan(0, plainLength);
            header.Slice(HeaderLayout.RoutingOffset, _layout.RoutingSize).CopyTo(span);
            span[_layout.RoutingSize..].Clear();
            using (var rho = new AesCtr(keys.HeaderStream))
            {
                rho.Xor(0, span);
            }

            var slot = span[..S];
            var check = CheckSlot(slot, out var deadline, out var service);
            if (check != TunnelErrorKind.None)
            {
                keys.Dispose();
                return HeaderResult.Reject(check);
            }

            var trace = (slot[HeaderLayout.SlotFlags] & HeaderLayout.FlagSealedTrace) != 0
                ? slot.Slice(HeaderLayout.SlotTrace, HeaderLayout.SlotTraceSize).ToArray()
                : ReadOnlyMemory<byte>.Empty;

            if (slot[HeaderLayout.SlotCommand] == HeaderLayout.CommandDeliver)
            {
                var replyId = slot[HeaderLayout.SlotMode] == (byte)TunnelMode.ReplyBlock
                    ? slot.Slice(HeaderLayout.SlotReplyId, HeaderLayout.SlotReplyIdSize).ToArray()
                    : ReadOnlyMemory<byte>.Empty;
                var attached = (slot[HeaderLayout.SlotFlags] & HeaderLayout.FlagReplyBlockAttached) != 0;
                return HeaderResult.Deliver(keys, epoch, (TunnelMode)slot[HeaderLayout.SlotMode], deadline, trace, service, replyId, attached);
            }

            var next = new NodeId(slot.Slice(HeaderLayout.SlotNextId, NodeId.Size));
            if (nextHeader.Length != _layout.Size)
            {
                keys.Dispose();
                throw new ArgumentException("the next header buffer has the wrong size", nameof(nextHeader));
            }

            nextHeader[HeaderLayout.VersionOffset] = HeaderLayout.Version;
            slot.Slice(HeaderLayout.SlotNextEpoch, 4).CopyTo(nextHeader[HeaderLayout.EpochOffset..]);
            slot.Slice(HeaderLayout.SlotNextAlpha, HeaderLayout.KeySize).CopyTo(nextHeader[HeaderLayout.AlphaOffset..]);
            span.Slice(S, _layout.RoutingSize).CopyTo(nextHeader[HeaderLayout.RoutingOffset..]);
            slot.Slice(HeaderLayout.SlotNextGamma, HeaderLayout.MacSize).CopyTo(nextHeader[_layout.GammaOffset..]);
            return HeaderResult.Relay(keys, epoch, next, deadline, trace);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(plain, clearArray: true);
        }
    }
}
