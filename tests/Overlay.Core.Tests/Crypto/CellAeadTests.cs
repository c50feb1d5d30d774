using System.Security.Cryptography;
using Overlay.Crypto;
using Xunit.Abstractions;

namespace Overlay.Tests.Crypto;

/// <summary>The cell layer's AES-256-GCM (libsodium where the CPU allows) is byte for byte the BCL's.</summary>
public sealed class CellAeadTests(ITestOutputHelper output)
{
    public static TheoryData<int, bool> Lengths()
    {
        var data = new TheoryData<int, bool>();
        foreach (var length in new[] { 0, 1, 15, 16, 1005, 4077, 16365 })
        {
            data.Add(length, false);
            data.Add(length, true);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Lengths))]
    public void Seals_and_opens_exactly_as_the_bcl_does(int length, bool useBcl)
    {
        output.WriteLine(!useBcl && Sodium.AesGcmAvailable ? "libsodium AES-256-GCM against the BCL" : "the BCL path against the BCL");
        var random = new Random(length);
        var key = new byte[32];
        var nonce = new byte[12];
        var plaintext = new byte[length];
        for (var round = 0; round < 20; round++)
        {
            random.NextBytes(key);
            random.NextBytes(nonce);
            random.NextBytes(plaintext);
            using var aead = new CellAead(key, useBcl);
            using var bcl = new AesGcm(key, 16);
            var ours = new byte[length];
            var ourTag = new byte[16];
            var theirs = new byte[length];
            var theirTag = new byte[16];

            aead.Encrypt(nonce, plaintext, ours, ourTag);
            bcl.Encrypt(nonce, plaintext, theirs, theirTag);

            Assert.Equal(theirs, ours);
            Assert.Equal(theirTag, ourTag);
            var opened = new byte[length];
            Assert.True(aead.TryDecrypt(nonce, theirs, theirTag, opened));
            Assert.Equal(plaintext, opened);

            // In place, as cells are sealed.
            var inPlace = plaintext.ToArray();
            aead.Encrypt(nonce, inPlace, inPlace, ourTag);
            Assert.Equal(theirs, inPlace);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_changed_byte_anywhere_fails_to_open(bool useBcl)
    {
        var key = RandomNumberGenerator.GetBytes(32);
        var nonce = RandomNumberGenerator.GetBytes(12);
        var plaintext = RandomNumberGenerator.GetBytes(300);
        using var aead = new CellAead(key, useBcl);
        var ciphertext = new byte[300];
        var tag = new byte[16];
        aead.Encrypt(nonce, plaintext, ciphertext, tag);
        var opened = new byte[300];

        foreach (var (buffer, index) in new[] { (ciphertext, 0), (ciphertext, 299), (tag, 0), (tag, 15), (nonce, 11) })
        {
            buffer[index] ^= 1;
            Assert.False(aead.TryDecrypt(nonce, ciphertext, tag, opened));
            buffer[index] ^= 1;
        }

        Assert.True(aead.TryDecrypt(nonce, ciphertext, tag, opened));
        using var other = new CellAead(RandomNumberGenerator.GetBytes(32), useBcl);
        Assert.False(other.TryDecrypt(nonce, ciphertext, tag, opened));
        Assert.False(aead.TryDecrypt(nonce, [], new byte[16], []), "an empty message with a wrong tag");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_disposed_instance_refuses_work(bool useBcl)
    {
        var aead = new CellAead(RandomNumberGenerator.GetBytes(32), useBcl);
        aead.Dispose();

        Assert.Throws<ObjectDisposedException>(() => aead.Encrypt(new byte[12], new byte[10], new byte[10], new byte[16]));
        Assert.Throws<ObjectDisposedException>(() => aead.TryDecrypt(new byte[12], new byte[10], new byte[16], new byte[10]));
        aead.Dispose();
    }
}
