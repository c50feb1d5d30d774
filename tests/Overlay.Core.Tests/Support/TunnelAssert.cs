using Overlay.Errors;

namespace Overlay.Tests.Support;

/// <summary>Assertions over <see cref="StreamResult"/>s.</summary>
internal static class TunnelAssert
{
    /// <summary>Byte-for-byte equality without xunit's element-wise diff (slow on megabytes).</summary>
    public static void BytesEqual(ReadOnlySpan<byte> expected, ReadOnlySpan<byte> actual)
    {
        if (expected.SequenceEqual(actual))
        {
            return;
        }

        var common = Math.Min(expected.Length, actual.Length);
        var first = expected[..common].CommonPrefixLength(actual[..common]);
        Assert.Fail($"bytes differ: expected {expected.Length} bytes, got {actual.Length}; first difference at offset {first}");
    }

    /// <summary>The message arrived whole and nothing failed.</summary>
    public static void Delivered(ReadOnlySpan<byte> expected, StreamResult result)
    {
        Assert.Empty(result.Failures);
        Assert.NotNull(result.Message);
        BytesEqual(expected, result.Message);
    }

    /// <summary>Exactly one failure, of <paramref name="kind"/>, reported by hop <paramref name="detectedAt"/>.</summary>
    public static void FailedAt(StreamResult result, TunnelErrorKind kind, int detectedAt, int attributedHop = 0)
    {
        Assert.Null(result.Message);
        var failure = Assert.Single(result.Failures);
        Assert.Equal(new StreamFailure(kind, detectedAt, attributedHop), failure);
    }

    /// <summary>
    /// Every link carried the same number of cells, each exactly <paramref name="cellSize"/> bytes:
    /// nothing on a link varies with position.
    /// </summary>
    public static void UniformLinks(StreamResult result, int cellSize, int expectedLinks)
    {
        Assert.Equal(expectedLinks, result.Links.Count);
        var counts = result.Links.Values.Select(l => l.Cells).Distinct().ToArray();
        Assert.Single(counts);
        Assert.True(counts[0] > 0, "no cell crossed the links");
        foreach (var link in result.Links.Values)
        {
            Assert.Equal([cellSize], link.CellSizes);
            Assert.Equal(link.Cells * cellSize, link.Bytes);
        }
    }
}
