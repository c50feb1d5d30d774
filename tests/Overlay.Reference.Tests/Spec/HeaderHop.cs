using System.Buffers.Binary;
using System.Numerics;
using System.Security.Cryptography;
using System.Text;

namespace Overlay.Reference.Spec;

/// <summary>
/// docs/protocol.md 6.2, processing at a hop, in the order the section gives: a hop with onion
/// private keys by epoch and a replay cache per epoch.
/// </summary>
internal sealed class HeaderHop(int slots, int maxDeadlineClass, IReadOnlyDictionary<uint, byte[]> onionKeys)
{
    private const int S = Wire.SlotSize;
    private static readonly BigInteger P = BigInteger.Pow(2, 255) - 19;
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly Dictionary<uint, HashSet<string>> _replayTags = [];

    public HeaderResult Process(byte[] header)
    {
        var N = slots;
        // 1. size; 2. version; 3. epoch.
        if (header.Length != Wire.HeaderSize(N))
        {
            return HeaderResult.Refused(Wire.Malformed);
        }

        if (header[0] != Wire.Version)
        {
            return HeaderResult.Refused(Wire.UnsupportedVersion);
        }

        var epoch = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(Wire.EpochOffset));
        if (!onionKeys.TryGetValue(epoch, out var onionPrivate))
        {
            return HeaderResult.Refused(Wire.UnknownEpoch);
        }

        // 4. alpha's top bit clear, and (after step 9's note) canonical: u < p.
        var alpha = header[Wire.AlphaOffset..Wire.BetaOffset];
        if ((alpha[31] & 0x80) != 0 || new BigInteger(alpha, isUnsigned: true, isBigEndian: false) >= P)
        {
            return HeaderResult.Refused(Wire.Malformed);
        }

        // 5. the agreement yields a secret.
        var shared = X25519.Agree(onionPrivate, alpha);
        if (shared is null || Bytes.AllZero(shared))
        {
            return HeaderResult.Refused(Wire.Malformed);
        }

        // 6. keys, then gamma in constant time.
        var secrets = HopSecrets.Derive(shared);
        var gammaOffset = Wire.BetaOffset + (N * S);
        if (!CryptographicOperations.FixedTimeEquals(Wire.HeaderMac(secrets[HopSecrets.HeaderMac], header.AsSpan(0, gammaOffset)), header.AsSpan(gammaOffset, Wire.MacSize)))
        {
            return HeaderResult.Refused(Wire.Tampered);
        }

        // 7. the replay tag.
        var tags = _replayTags.TryGetValue(epoch, out var known) ? known : _replayTags[epoch] = [];
        if (!tags.Add(Bytes.ToHex(secrets[HopSecrets.ReplayTag])))
        {
            return HeaderResult.Refused(Wire.Replayed);
        }

        // 8. B = (beta || 0^128) XOR AES-CTR(header stream key, q = 0); the slot is B[0..128).
        var b = CounterMode.Apply(secrets[HopSecrets.HeaderStream], 0, Bytes.Concat(header[Wire.BetaOffset..gammaOffset], Bytes.Zeros(S)));
        var slot = b[..S];
        var slotError = CheckSlot(slot);
        if (slotError != 0)
        {
            return HeaderResult.Refused(slotError);
        }

        // 9. relay: 1 || next epoch || next alpha || B[128 .. 128·(N+1)) || next gamma.
        var next = slot[0] == Wire.Relay
            ? Bytes.Concat([Wire.Version], slot[4..8], slot[40..72], b[S..((N + 1) * S)], slot[72..88])
            : null;
        return new HeaderResult(0, secrets, slot, next);
    }

    // Step 8's list, in its order.
    private int CheckSlot(byte[] slot)
    {
        var flags = slot[3];
        // Bit 0: a sealed trace context; bit 1: a reply block starts the message (deliver, mode 2 only; 7.8).
        if ((flags & ~3) != 0 || !Bytes.AllZero(slot.AsSpan(120, 8)) || ((flags & 1) == 0 && !Bytes.AllZero(slot.AsSpan(88, 32))))
        {
            return Wire.Malformed;
        }

        if (slot[2] > 7 || slot[2] > maxDeadlineClass)
        {
            return Wire.Malformed;
        }

        switch (slot[0])
        {
            case Wire.Relay:
                return slot[1] == 0 && (flags & 2) == 0 && !Bytes.AllZero(slot.AsSpan(8, 32)) ? 0 : Wire.Malformed;
            case Wire.Deliver:
                if ((flags & 2) != 0 && slot[1] != 2)
                {
                    return Wire.Malformed;
                }

                if (slot[1] == 3)
                {
                    // A reply block (section 7.8): no service, a reply id that is not all zero, then zeros.
                    return Bytes.AllZero(slot.AsSpan(4, 32)) && !Bytes.AllZero(slot.AsSpan(36, 16)) && Bytes.AllZero(slot.AsSpan(52, 36)) ? 0 : Wire.Malformed;
                }

                return slot[1] is 1 or 2 && Bytes.AllZero(slot.AsSpan(36, 52)) && IsServiceName(slot.AsSpan(4, 32)) ? 0 : Wire.Malformed;
            default:
                return Wire.Malformed;
        }
    }

    // Valid UTF-8 up to the first zero, only zeros after it; all zero is the default service.
    private static bool IsServiceName(ReadOnlySpan<byte> field)
    {
        var end = field.IndexOf((byte)0);
        if (end < 0)
        {
            end = field.Length;
        }

        if (!Bytes.AllZero(field[end..]))
        {
            return false;
        }

        try
        {
            StrictUtf8.GetString(field[..end]);
            return true;
        }
        catch (DecoderFallbackException)
        {
            return false;
        }
    }
}
