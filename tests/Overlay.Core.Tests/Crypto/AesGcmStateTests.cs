using System.Reflection;
using System.Runtime.InteropServices;
using Overlay.Crypto;
using Xunit.Abstractions;

namespace Overlay.Tests.Crypto;

/// <summary>libsodium's precomputed AES-GCM state is allocated at the size the library itself reports.</summary>
public sealed class AesGcmStateTests(ITestOutputHelper output)
{
    [Fact]
    public void The_native_state_is_as_large_as_libsodium_says_its_state_is()
    {
        // Asked here directly, not through the code under test.
        var expected = checked((int)crypto_aead_aes256gcm_statebytes());
        Assert.True(expected > 0);
        Assert.Equal(expected, Sodium.AesGcmStateSize);

        using var aead = new CellAead(new byte[CellAead.KeySize]);
        var state = (AlignedSecretState?)typeof(CellAead).GetField("_state", BindingFlags.Instance | BindingFlags.NonPublic)!.GetValue(aead);
        if (!Sodium.AesGcmAvailable)
        {
            output.WriteLine("this CPU has no AES-GCM instructions libsodium uses: the BCL path holds no libsodium state");
            Assert.Null(state);
            return;
        }

        Assert.Equal(expected, state!.Size);
    }

    [DllImport("libsodium")]
    private static extern nuint crypto_aead_aes256gcm_statebytes();
}
