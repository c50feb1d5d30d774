using Overlay.Cells;

namespace Overlay.Tests.Cells;

/// <summary>Property tests: however a byte stream is cut, the assembler yields exactly the cells sent.</summary>
public sealed class CellAssemblerTests
{
    public static TheoryData<int> Seeds() => [.. Enumerable.Range(1, 40)];

    [Theory]
    [MemberData(nameof(Seeds))]
    public void Random_chunks_including_empty_ones_yield_exactly_the_original_cells(int seed)
    {
        var random = new Random(seed);
        var cellSize = new[] { 1, 3, 16, 512, 4096 }[random.Next(5)];
        var cells = Enumerable.Range(0, random.Next(0, 40)).Select(_ => RandomBytes(random, cellSize)).ToArray();
        var stream = cells.SelectMany(c => c).ToArray();
        var assembler = new CellAssembler(cellSize);

        var received = new List<byte[]>();
        var offset = 0;
        var emptyChunks = 0;
        while (offset < stream.Length || emptyChunks == 0)
        {
            var length = Math.Min(stream.Length - offset, NextChunk(random, cellSize));
            emptyChunks += length == 0 ? 1 : 0;
            // Copy the chunk: the assembler may hand back slices of it, which we must not see change.
            Span<byte> chunk = stream.AsSpan(offset, length).ToArray();
            offset += length;
            while (assembler.TryNext(ref chunk, out var cell))
            {
                received.Add(cell.ToArray());
            }

            Assert.True(chunk.IsEmpty, "TryNext returned false with input left");
        }

        Assert.Equal(cellSize, assembler.CellSize);
        Assert.Equal(0, assembler.PendingBytes);
        Assert.Equal(cells.Length, received.Count);
        for (var i = 0; i < cells.Length; i++)
        {
            Assert.True(cells[i].AsSpan().SequenceEqual(received[i]), $"cell {i} differs");
        }
    }

    [Theory]
    [MemberData(nameof(Seeds))]
    public void A_stream_cut_anywhere_leaves_exactly_the_partial_cell_pending(int seed)
    {
        var random = new Random(seed);
        var cellSize = random.Next(1, 600);
        var stream = RandomBytes(random, random.Next(0, 10 * cellSize));
        var assembler = new CellAssembler(cellSize);
        var whole = 0;

        for (var offset = 0; offset < stream.Length;)
        {
            var length = Math.Min(stream.Length - offset, NextChunk(random, cellSize));
            Span<byte> chunk = stream.AsSpan(offset, length);
            offset += length;
            while (assembler.TryNext(ref chunk, out _))
            {
                whole++;
            }
        }

        Assert.Equal(stream.Length / cellSize, whole);
        Assert.Equal(stream.Length % cellSize, assembler.PendingBytes);
    }

    [Fact]
    public void An_empty_read_is_never_an_end_and_never_a_cell()
    {
        var assembler = new CellAssembler(8);
        Span<byte> three = new byte[] { 1, 2, 3 };
        Assert.False(assembler.TryNext(ref three, out _));

        for (var i = 0; i < 5; i++)
        {
            Span<byte> empty = [];
            Assert.False(assembler.TryNext(ref empty, out var cell));
            Assert.True(cell.IsEmpty);
        }

        Assert.Equal(3, assembler.PendingBytes);
        Span<byte> rest = new byte[] { 4, 5, 6, 7, 8, 9 };
        Assert.True(assembler.TryNext(ref rest, out var completed));
        Assert.Equal(new byte[] { 1, 2, 3, 4, 5, 6, 7, 8 }, completed.ToArray());
        Assert.Equal(new byte[] { 9 }, rest.ToArray());
    }

    [Fact]
    public void A_whole_cell_in_the_input_is_returned_in_place_and_a_split_one_in_the_assemblers_buffer()
    {
        var assembler = new CellAssembler(4);
        var input = new byte[] { 1, 2, 3, 4, 5, 6 };
        Span<byte> span = input;

        Assert.True(assembler.TryNext(ref span, out var inPlace));
        Assert.True(inPlace.Overlaps(input));
        Assert.False(assembler.TryNext(ref span, out _));
        Span<byte> more = new byte[] { 7, 8 };
        Assert.True(assembler.TryNext(ref more, out var copied));
        Assert.False(copied.Overlaps(input));
        Assert.Equal(new byte[] { 5, 6, 7, 8 }, copied.ToArray());
    }

    [Fact]
    public void The_cell_size_must_be_positive() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new CellAssembler(0));

    private static int NextChunk(Random random, int cellSize) => random.Next(6) switch
    {
        0 => 0,
        1 => random.Next(1, 4),
        2 or 3 => random.Next(1, cellSize + 1),
        _ => random.Next(cellSize, (4 * cellSize) + 2),
    };

    private static byte[] RandomBytes(Random random, int length)
    {
        var bytes = new byte[length];
        random.NextBytes(bytes);
        return bytes;
    }
}
