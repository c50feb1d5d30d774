using Overlay.Crypto;

namespace Overlay.Tests.Support;

/// <summary>
/// A reproducible <see cref="IOnionRandom"/> for tests only: the same seed gives the same
/// ephemeral keys, header padding and cell padding keys. Never a source of real randomness.
/// </summary>
internal sealed class SeededOnionRandom(int seed) : IOnionRandom
{
    private readonly Random _random = new(seed);

    public void Fill(Span<byte> destination) => _random.NextBytes(destination);
}
