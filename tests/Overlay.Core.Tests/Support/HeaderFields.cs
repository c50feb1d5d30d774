using Overlay.Errors;
using Overlay.Onion;

namespace Overlay.Tests.Support;

/// <summary>
/// The header's fields as the wire spec gives them, written out here rather than taken from the
/// code under test: version (1 byte), epoch (4, big-endian), alpha (32), routing block, gamma (16).
/// </summary>
internal static class HeaderFields
{
    public const int Version = 0;
    public const int EpochStart = 1;
    public const int AlphaStart = 5;
    public const int AlphaEnd = 37;
    public const int RoutingStart = 37;
    public const int GammaSize = 16;
    public const int AlphaTopBit = ((AlphaEnd - 1) * 8) + 7;

    public static int GammaStart(int headerSize) => headerSize - GammaSize;

    /// <summary>
    /// What a hop must answer to a header that differs from a genuine one in bit <paramref name="bit"/>,
    /// given the tampered bytes (a one-bit change of alpha could, in theory, land on a bad point).
    /// Assumes the hop holds no epoch one bit away from the header's.
    /// </summary>
    public static TunnelErrorKind ExpectedRejection(ReadOnlySpan<byte> tampered, int bit)
    {
        var index = bit / 8;
        if (index == Version)
        {
            return TunnelErrorKind.UnsupportedVersion;
        }

        if (index < AlphaStart)
        {
            return TunnelErrorKind.UnknownEpoch;
        }

        if (bit == AlphaTopBit)
        {
            return TunnelErrorKind.Malformed;
        }

        if (index < AlphaEnd)
        {
            var alpha = tampered[AlphaStart..AlphaEnd];
            return X25519Points.IsLowOrder(alpha) || X25519Points.IsNonCanonical(alpha)
                ? TunnelErrorKind.Malformed
                : TunnelErrorKind.Tampered;
        }

        return TunnelErrorKind.Tampered;
    }

    /// <summary>
    /// Flips each bit of <paramref name="header"/> in turn, has <paramref name="node"/> process it,
    /// and returns a line for every answer that is not the expected rejection.
    /// </summary>
    public static List<string> FlipEach(TestNode node, byte[] header, IEnumerable<int> bits)
    {
        var problems = new List<string>();
        var next = new byte[header.Length];
        var work = header.ToArray();
        foreach (var bit in bits)
        {
            Bits.Flip(work, bit);
            try
            {
                var expected = ExpectedRejection(work, bit);
                using var result = node.Processor.Process(work, next);
                if (result.Outcome != HeaderOutcome.Rejected || result.Rejection != expected)
                {
                    problems.Add($"bit {bit} (byte {bit / 8}): {result.Outcome} {result.Rejection}, expected {expected}");
                }
            }
            finally
            {
                Bits.Flip(work, bit);
            }
        }

        return problems;
    }

    public static void AssertNoProblems(List<string> problems) =>
        Assert.True(problems.Count == 0, $"{problems.Count} flips not refused as expected:\n" + string.Join('\n', problems.Take(25)));
}
