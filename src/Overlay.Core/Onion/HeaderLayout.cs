using System.Security.Cryptography;
using Overlay.Protocol;

namespace Overlay.Onion;

/// <summary>
/// Byte layout of the onion header (docs/protocol.md, "Header"):
/// <code>
///  0        1            5                 37                           37 + N*128      +16
///  +--------+------------+-----------------+----------------------------+----------------+
///  |version | epoch (BE) | alpha: X25519   | routing block beta:        | gamma: MAC of  |
///  |  = 1   |  uint32    | ephemeral key   | N slots of 128 bytes       | bytes [0, G)   |
///  +--------+------------+-----------------+----------------------------+----------------+
///  N = MaxRelays + 1, G = 37 + N*128 (the MAC covers everything before it)
/// </code>
/// A slot, after the hop removes its layer of beta; its fields depend on the command, and every
/// byte a command does not use must be zero (checked at the hop: unused bytes would be a tagging channel):
/// <code>
///  off size  relay (cmd 1)     deliver (cmd 2)
///  0   1     cmd               cmd
///  1   1     0                 mode (1 duplex, 2 one-way, 3 reply: reserved)
///  2   1     deadline class    deadline class
///  3   1     flags             flags            (bit 0: sealed trace present)
///  4   4     next epoch        service name     (4..36: UTF-8, zero padded; all zero = default)
///  8   32    next id             "
///  36        (next id)         reply id         (36..52, zero unless mode 3)
///  40  32    next alpha        zero             (52..88)
///  72  16    next gamma        zero
///  88  32    sealed trace      sealed trace     (zero unless flag bit 0)
///  120 8     zero              zero
/// </code>
/// </summary>
internal readonly struct HeaderLayout
{
    public const byte Version = 1;
    public const int VersionOffset = 0;
    public const int EpochOffset = 1;
    public const int AlphaOffset = 5;
    public const int RoutingOffset = 37;
    public const int KeySize = 32;
    public const int MacSize = 16;

    public const int SlotSize = 128;
    public const int SlotCommand = 0;
    public const int SlotMode = 1;
    public const int SlotDeadline = 2;
    public const int SlotFlags = 3;
    public const int SlotNextEpoch = 4;
    public const int SlotNextId = 8;
    public const int SlotNextAlpha = 40;
    public const int SlotNextGamma = 72;
    public const int SlotTrace = 88;
    public const int SlotTraceSize = 32;
    public const int SlotReserved = 120;

    // Deliver slots reuse the bytes a relay slot spends on the next header.
    public const int SlotService = 4;
    public const int SlotServiceSize = 32;
    public const int SlotReplyId = 36;
    public const int SlotReplyIdSize = 16;
    public const int SlotDeliverUnused = 52;

    public const byte CommandRelay = 1;
    public const byte CommandDeliver = 2;
    public const byte FlagSealedTrace = 0x01;

    // Deliver slots of one-way tunnels only: the message starts with a reply block (docs/protocol.md §7.8).
    public const byte FlagReplyBlockAttached = 0x02;

    public HeaderLayout(NetworkParameters parameters) => SlotCount = parameters.MaxRelays + 1;

    /// <summary>N: the number of hop slots (MaxRelays + 1).</summary>
    public int SlotCount { get; }

    public int RoutingSize => SlotCount * SlotSize;

    public int GammaOffset => RoutingOffset + RoutingSize;

    public int Size => GammaOffset + MacSize;

    /// <summary>gamma = HMAC-SHA256(key, header[0, G)) truncated to 16 bytes.</summary>
    public static void ComputeMac(ReadOnlySpan<byte> key, ReadOnlySpan<byte> covered, Span<byte> mac)
    {
        Span<byte> full = stackalloc byte[32];
        HMACSHA256.HashData(key, covered, full);
        full[..MacSize].CopyTo(mac);
    }
}

/// <summary>Sizes of the onion header for a network.</summary>
public static class OnionHeader
{
    /// <summary>The header's size on the wire, the same at every hop.</summary>
    public static int SizeFor(NetworkParameters parameters) => new HeaderLayout(parameters).Size;

    /// <summary>The header format version this code speaks.</summary>
    public const byte Version = HeaderLayout.Version;
}
