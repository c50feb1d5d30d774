using System.Diagnostics;
using Overlay.Protocol;
using Overlay.Tests.Support;
using Xunit.Abstractions;

namespace Overlay.Tests;

/// <summary>Header plus 1 MiB each way, streamed through every hop in random chunks (guarantees 1, 2, 3 of docs/protocol.md).</summary>
public sealed class TunnelRoundTripTests(ITestOutputHelper output)
{
    private const int MiB = 1 << 20;

    public static TheoryData<CellConstruction, int, int, int> Routes()
    {
        var data = new TheoryData<CellConstruction, int, int, int>();
        foreach (var construction in new[] { CellConstruction.Baseline, CellConstruction.MacArray })
        {
            foreach (var relays in new[] { 0, 1, 2, 8, 32 })
            {
                data.Add(construction, relays, NetworkParameters.DefaultMaxRelays, NetworkParameters.DefaultCellSize);
            }
        }

        // The devnet's 126 relays. With the MAC array a 4 KiB cell still carries 2,045 payload bytes
        // (127 MACs take 2,032), so both cell sizes are valid; 16 KiB is the measured sweet spot.
        data.Add(CellConstruction.Baseline, 126, 126, 4096);
        data.Add(CellConstruction.MacArray, 126, 126, 4096);
        data.Add(CellConstruction.MacArray, 126, 126, 16384);
        return data;
    }

    [Theory]
    [MemberData(nameof(Routes))]
    public void One_MiB_each_way_arrives_intact(CellConstruction construction, int relays, int maxRelays, int cellSize)
    {
        var parameters = new NetworkParameters { Construction = construction, MaxRelays = maxRelays, CellSize = cellSize };
        Assert.Null(parameters.Validate());
        var seed = HashCode.Combine(construction, relays, cellSize) & 0x7fffffff;
        var random = new Random(seed);
        var request = new byte[MiB];
        var reply = new byte[MiB];
        random.NextBytes(request);
        random.NextBytes(reply);

        var clock = Stopwatch.StartNew();
        using var tunnel = InMemoryTunnel.Open(parameters, relays, seed);
        var opened = clock.Elapsed;

        var forward = tunnel.SendForward(request);
        var sent = clock.Elapsed;
        var backward = tunnel.SendBackward(reply);
        output.WriteLine($"{construction} {relays} relays, {cellSize} B cells: open {opened.TotalMilliseconds:F0} ms, " +
                         $"forward {(sent - opened).TotalMilliseconds:F0} ms, backward {(clock.Elapsed - sent).TotalMilliseconds:F0} ms");

        TunnelAssert.Delivered(request, forward);
        TunnelAssert.Delivered(reply, backward);
        TunnelAssert.UniformLinks(forward, cellSize, relays + 1);
        TunnelAssert.UniformLinks(backward, cellSize, relays + 1);
        var forwardCells = (MiB + tunnel.Origin.ForwardPayloadCapacity - 1) / tunnel.Origin.ForwardPayloadCapacity;
        var backwardCells = (MiB + tunnel.Destination.BackwardPayloadCapacity - 1) / tunnel.Destination.BackwardPayloadCapacity;
        Assert.Equal(forwardCells, forward.Links[1].Cells);
        Assert.Equal(backwardCells, backward.Links[0].Cells);
        Assert.Equal((ulong)forwardCells, tunnel.Origin.ForwardCells);

        // The streams really were cut at random places, empty reads included.
        var links = forward.Links.Values.Concat(backward.Links.Values).ToArray();
        Assert.True(links.Sum(l => l.EmptyChunks) > 0, "no empty chunk was delivered");
        Assert.All(links, l => Assert.True(l.UnalignedChunks > 0, $"link to hop {l.Receiver} was never cut mid-cell"));
        Assert.All(tunnel.RelayCodecs, r => Assert.Equal((ulong)forwardCells, r.ForwardCells));
        Assert.All(tunnel.RelayCodecs, r => Assert.Equal((ulong)backwardCells, r.BackwardCells));
    }
}
