using System.Security.Cryptography;

namespace Overlay.Crypto;

/// <summary>
/// Where the origin's randomness comes from (ephemeral keys, header padding, cell padding keys).
/// Production uses the operating system's CSPRNG; the test vectors inject a fixed sequence.
/// </summary>
public interface IOnionRandom
{
    /// <summary>Fills <paramref name="destination"/> with random bytes.</summary>
    void Fill(Span<byte> destination);
}

/// <summary>The operating system's cryptographic random number generator.</summary>
public sealed class SystemOnionRandom : IOnionRandom
{
    /// <summary>The shared instance.</summary>
    public static SystemOnionRandom Instance { get; } = new();

    private SystemOnionRandom()
    {
    }

    /// <inheritdoc />
    public void Fill(Span<byte> destination) => RandomNumberGenerator.Fill(destination);
}
