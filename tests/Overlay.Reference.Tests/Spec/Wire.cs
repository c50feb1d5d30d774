namespace Overlay.Reference.Spec;

/// <summary>Sizes and codes of docs/protocol.md sections 6 to 8.</summary>
internal static class Wire
{
    public const byte Version = 1;
    public const int EpochOffset = 1;
    public const int AlphaOffset = 5;
    public const int BetaOffset = 37;
    public const int SlotSize = 128;
    public const int MacSize = 16;
    public const int EntrySize = 16;
    public const int TagSize = 16;

    public const byte Relay = 1;
    public const byte Deliver = 2;

    // Section 7.1 cell types.
    public const byte Data = 1;
    public const byte End = 2;
    public const byte Error = 3;
    public const byte Padding = 4;
    public const byte Receipt = 5;

    // Section 8 error codes used here.
    public const int Tampered = 1;
    public const int Replayed = 2;
    public const int UnknownEpoch = 3;
    public const int UnsupportedVersion = 4;
    public const int Malformed = 5;
    public const int ProtocolViolation = 13;

    /// <summary>Section 6.1: <c>53 + 128·N</c> bytes.</summary>
    public static int HeaderSize(int slots) => 53 + (SlotSize * slots);

    /// <summary>Section 6.1: gamma is HMAC-SHA256 under the header mac key, its first 16 bytes.</summary>
    public static byte[] HeaderMac(byte[] key, ReadOnlySpan<byte> covered) =>
        System.Security.Cryptography.HMACSHA256.HashData(key, covered)[..MacSize];
}
