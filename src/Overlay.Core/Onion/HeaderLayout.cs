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
/// A slot, after the hop removes its layer of beta:
/// <code>
///  0    1    2         3      4           8          40           72          88            120      128
///  +----+----+---------+------+-----------+----------+------------+-----------+-------------+--------+
///  |cmd |mode|deadline |flags |next epoch | next id  | next alpha | next gamma| sealed trace| zero   |
///  +----+----+---------+------+-----------+----------+------------+-----------+-------------+--------+
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

    public const byte CommandRelay = 1;
    public const byte CommandDeliver = 2;
    public const byte FlagSealedTrace = 0x01;

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
