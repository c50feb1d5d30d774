using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Overlay.Reference.Spec;

/// <summary>
/// docs/protocol.md 7.1: AES-256-GCM over <c>type (1) || length (2) || payload || zero padding</c>,
/// nonce <c>0^4 || sequence (8 bytes)</c>, no associated data; the body is ciphertext || tag.
/// </summary>
internal static class InnerCell
{
    public static byte[] Seal(byte[] key, ulong sequence, byte type, byte[] payload, int bodyLength)
    {
        var plaintext = new byte[bodyLength - Wire.TagSize];
        plaintext[0] = type;
        BinaryPrimitives.WriteUInt16BigEndian(plaintext.AsSpan(1), (ushort)payload.Length);
        payload.CopyTo(plaintext, 3);
        var body = new byte[bodyLength];
        using var gcm = new AesGcm(key, Wire.TagSize);
        gcm.Encrypt(Nonce(sequence), plaintext, body.AsSpan(0, plaintext.Length), body.AsSpan(plaintext.Length));
        return body;
    }

    /// <summary>The opened type and payload, or null when the tag does not match (or the length is impossible).</summary>
    public static (byte Type, byte[] Payload)? Open(byte[] key, ulong sequence, ReadOnlySpan<byte> body)
    {
        var plaintext = new byte[body.Length - Wire.TagSize];
        using var gcm = new AesGcm(key, Wire.TagSize);
        try
        {
            gcm.Decrypt(Nonce(sequence), body[..plaintext.Length], body[plaintext.Length..], plaintext);
        }
        catch (AuthenticationTagMismatchException)
        {
            return null;
        }

        var length = BinaryPrimitives.ReadUInt16BigEndian(plaintext.AsSpan(1));
        return length > plaintext.Length - 3 ? null : (plaintext[0], plaintext[3..(3 + length)]);
    }

    private static byte[] Nonce(ulong sequence) => Bytes.Concat(Bytes.Zeros(4), Bytes.UInt64(sequence));
}
