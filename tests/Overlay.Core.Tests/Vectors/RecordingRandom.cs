using Overlay.Crypto;

namespace Overlay.Tests.Vectors;

/// <summary>Passes the vectors' random stream through and keeps every draw, in order, so the vectors can show what the origin drew.</summary>
internal sealed class RecordingRandom(IOnionRandom inner) : IOnionRandom
{
    public List<byte[]> Draws { get; } = [];

    public void Fill(Span<byte> destination)
    {
        inner.Fill(destination);
        Draws.Add(destination.ToArray());
    }
}
