using System.Buffers.Binary;
using Overlay.Cells;
using Overlay.Crypto;
using Overlay.Protocol;
using Overlay.Tests.Support;

namespace Overlay.Tests.Cells;

/// <summary>
/// Each direction of a codec has one writer: two threads that enter the same direction at once are
/// either serialised or refused with <see cref="InvalidOperationException"/>, and never take the same
/// sequence number (a repeated GCM nonce, a repeated relay keystream, or one cell accepted twice).
/// </summary>
public sealed class SingleWriterTests
{
    private const int PerThread = 4000;

    // Generous: the threads only wait for each other at the start, and the machine may be shared.
    private static readonly TimeSpan TestDeadline = TimeSpan.FromMinutes(2);

    public static TheoryData<CellConstruction> Constructions() => [CellConstruction.Baseline, CellConstruction.MacArray];

    [Theory]
    [MemberData(nameof(Constructions))]
    public void Concurrent_forward_seals_at_the_origin_never_share_a_sequence_number(CellConstruction construction)
    {
        using var tunnel = InMemoryTunnel.Open(Parameters(construction), 0, seed: 4100);
        var cellSize = tunnel.Parameters.CellSize;

        // Taking the number is one increment, a window of a few instructions: many tries.
        var sealedByThread = Hammer(10 * PerThread, (thread, i) =>
        {
            var cell = new byte[cellSize];
            tunnel.Origin.SealForward(CellType.Data, Payload(thread, i), cell);
            return cell;
        });

        var plaintext = new byte[cellSize];
        OpensOnceEach(sealedByThread, cell => !tunnel.Destination.OpenForward(cell, plaintext).IsError);
    }

    [Fact]
    public void Concurrent_backward_seals_at_the_destination_never_share_a_sequence_number()
    {
        using var tunnel = InMemoryTunnel.Open(Parameters(CellConstruction.Baseline), 0, seed: 4200);
        var cellSize = tunnel.Parameters.CellSize;

        var sealedByThread = Hammer(10 * PerThread, (thread, i) =>
        {
            var cell = new byte[cellSize];
            tunnel.Destination.SealBackward(CellType.Data, Payload(thread, i), cell);
            return cell;
        });

        var plaintext = new byte[cellSize];
        OpensOnceEach(sealedByThread, cell => !tunnel.Origin.OpenBackward(cell.ToArray(), plaintext).IsError);
    }

    [Fact]
    public void A_receipt_written_while_the_destination_seals_never_shares_a_sequence_number()
    {
        using var tunnel = InMemoryTunnel.Open(Parameters(CellConstruction.Baseline), 0, seed: 4250);
        var cellSize = tunnel.Parameters.CellSize;

        var sealedByThread = Hammer(10 * PerThread, (thread, i) =>
        {
            var cell = new byte[cellSize];
            if (thread == 0)
            {
                tunnel.Destination.SealBackward(CellType.Data, Payload(thread, i), cell);
            }
            else
            {
                tunnel.Destination.WriteReceipt(cell);
            }

            return cell;
        });

        var plaintext = new byte[cellSize];
        OpensOnceEach(sealedByThread, cell => !tunnel.Origin.OpenBackward(cell.ToArray(), plaintext).IsError);
    }

    [Theory]
    [MemberData(nameof(Constructions))]
    public void Concurrent_forward_opens_at_the_destination_never_accept_a_cell_twice(CellConstruction construction)
    {
        using var tunnel = InMemoryTunnel.Open(Parameters(construction), 0, seed: 4300);
        var cells = SealInOrder(PerThread, tunnel.Parameters.CellSize, (i, cell) => tunnel.Origin.SealForward(CellType.Data, Payload(0, i), cell));

        AcceptedAtMostOnce(cells, tunnel.Parameters.CellSize, (cell, plaintext) => !tunnel.Destination.OpenForward(cell, plaintext).IsError);
    }

    [Fact]
    public void Concurrent_backward_opens_at_the_origin_never_accept_a_cell_twice()
    {
        using var tunnel = InMemoryTunnel.Open(Parameters(CellConstruction.Baseline), 0, seed: 4400);
        var cells = SealInOrder(PerThread, tunnel.Parameters.CellSize, (i, cell) => tunnel.Destination.SealBackward(CellType.Data, Payload(0, i), cell));

        // OpenBackward works in place: each attempt gets its own copy of the cell.
        AcceptedAtMostOnce(cells, tunnel.Parameters.CellSize, (cell, plaintext) => !tunnel.Origin.OpenBackward(cell.ToArray(), plaintext).IsError);
    }

    [Theory]
    [InlineData(true, false)]
    [InlineData(true, true)]
    [InlineData(false, false)]
    [InlineData(false, true)]
    public void Concurrent_relay_processing_never_repeats_a_keystream(bool forward, bool batch)
    {
        using var tunnel = InMemoryTunnel.Open(Parameters(CellConstruction.Baseline), 1, seed: 4500);
        var relay = tunnel.RelayCodecs[0];
        var cellSize = tunnel.Parameters.CellSize;

        // A zero cell comes out as the keystream of the sequence number the relay used for it.
        var outputs = Hammer((_, _) =>
        {
            var cell = new byte[cellSize];
            switch (forward, batch)
            {
                case (true, false):
                    Assert.Equal(Errors.TunnelErrorKind.None, relay.ProcessForward(cell));
                    break;
                case (true, true):
                    Assert.Equal(Errors.TunnelErrorKind.None, relay.ProcessForwardCells(cell));
                    break;
                case (false, false):
                    relay.ProcessBackward(cell);
                    break;
                default:
                    relay.ProcessBackwardCells(cell);
                    break;
            }

            return cell;
        }).SelectMany(o => o).ToList();

        var hop = tunnel.OriginKeys.Hops[0];
        using var layer = new AesCtr(forward ? hop.ForwardLayer : hop.BackwardLayer);
        var expected = new HashSet<string>(StringComparer.Ordinal);
        var keystream = new byte[cellSize];
        for (var sequence = 0ul; sequence < (ulong)outputs.Count; sequence++)
        {
            layer.Keystream(sequence, keystream);
            expected.Add(Convert.ToHexString(keystream));
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var output in outputs)
        {
            var hex = Convert.ToHexString(output);
            Assert.True(seen.Add(hex), "two cells were processed with the same sequence number");
            Assert.Contains(hex, expected);
        }

        Assert.Equal((ulong)outputs.Count, forward ? relay.ForwardCells : relay.BackwardCells);
    }

    private static NetworkParameters Parameters(CellConstruction construction) => new() { Construction = construction, CellSize = 1024 };

    private static byte[] Payload(int thread, int i)
    {
        var payload = new byte[5];
        payload[0] = (byte)thread;
        BinaryPrimitives.WriteInt32BigEndian(payload.AsSpan(1), i);
        return payload;
    }

    private static List<byte[]> SealInOrder(int count, int cellSize, Action<int, byte[]> seal)
    {
        var cells = new List<byte[]>(count);
        for (var i = 0; i < count; i++)
        {
            var cell = new byte[cellSize];
            seal(i, cell);
            cells.Add(cell);
        }

        return cells;
    }

    /// <summary>
    /// Runs <paramref name="write"/> <paramref name="perThread"/> times on each of two threads started together, and
    /// returns, per thread and in its order, what each call that was not refused produced.
    /// </summary>
    private static List<byte[]>[] Hammer(Func<int, int, byte[]> write) => Hammer(PerThread, write);

    private static List<byte[]>[] Hammer(int perThread, Func<int, int, byte[]> write)
    {
        var results = new[] { new List<byte[]>(), new List<byte[]>() };
        var refused = new int[2];
        var failures = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
        using var start = new Barrier(2);
        var threads = Enumerable.Range(0, 2).Select(t => new Thread(() =>
        {
            try
            {
                start.SignalAndWait(TestDeadline);
                for (var i = 0; i < perThread; i++)
                {
                    try
                    {
                        results[t].Add(write(t, i));
                    }
                    catch (InvalidOperationException e) when (e.Message.Contains("one writer at a time", StringComparison.Ordinal))
                    {
                        // The guard refused an overlapping call; nothing was sealed or consumed.
                        refused[t]++;
                    }
                }
            }
            catch (Exception e)
            {
                // Reported on the test's thread below: an exception escaping a thread would end the test run.
                failures.Enqueue(e);
            }
        })).ToArray();

        foreach (var thread in threads)
        {
            thread.Start();
        }

        foreach (var thread in threads)
        {
            Assert.True(thread.Join(TestDeadline), "a writer thread did not finish");
        }

        Assert.Empty(failures);
        Assert.True(results[0].Count + results[1].Count > 0, "every call was refused");
        Assert.Equal(2 * perThread, results[0].Count + results[1].Count + refused[0] + refused[1]);
        return results;
    }

    /// <summary>
    /// Opens every cell of both threads in sequence order: each thread's cells came out in its own order, so
    /// the next sequence number is always at the head of one of the lists. A cell that never opens had a
    /// sequence number another cell also took, or one the sender skipped.
    /// </summary>
    private static void OpensOnceEach(List<byte[]>[] byThread, Func<byte[], bool> tryOpen)
    {
        var heads = new int[byThread.Length];
        var opened = 0;
        var total = byThread.Sum(l => l.Count);
        while (opened < total)
        {
            var progressed = false;
            for (var t = 0; t < byThread.Length; t++)
            {
                if (heads[t] < byThread[t].Count && tryOpen(byThread[t][heads[t]]))
                {
                    heads[t]++;
                    opened++;
                    progressed = true;
                }
            }

            Assert.True(progressed, $"after {opened} of {total} cells, no remaining cell opens with the next sequence number");
        }
    }

    /// <summary>Two threads try to open every cell, in order; each cell must be accepted at most once, and some must be.</summary>
    private static void AcceptedAtMostOnce(List<byte[]> cells, int cellSize, Func<byte[], byte[], bool> tryOpen)
    {
        var accepted = new int[cells.Count];
        Hammer((_, i) =>
        {
            var plaintext = new byte[cellSize];
            if (tryOpen(cells[i], plaintext))
            {
                Interlocked.Increment(ref accepted[i]);
                Assert.Equal(i, BinaryPrimitives.ReadInt32BigEndian(plaintext.AsSpan(OpenedCell.PayloadOffset + 1)));
            }

            return [];
        });

        Assert.All(accepted, count => Assert.InRange(count, 0, 1));
        Assert.Contains(1, accepted);
    }
}
