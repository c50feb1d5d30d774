using Overlay.Errors;
using Overlay.Onion;
using Overlay.Protocol;
using Overlay.Tests.Support;

namespace Overlay.Tests;

/// <summary>
/// Guarantee 2 (docs/protocol.md): the header and every cell have the same size on every link, in both directions
/// and for every route length, so no hop learns its position from sizes or counts.
/// </summary>
public sealed class SizeConstancyTests
{
    public static TheoryData<CellConstruction, int> Routes()
    {
        var data = new TheoryData<CellConstruction, int>();
        foreach (var construction in new[] { CellConstruction.Baseline, CellConstruction.MacArray })
        {
            foreach (var relays in new[] { 0, 1, 5, 31, 32 })
            {
                data.Add(construction, relays);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Routes))]
    public void Headers_cells_and_error_cells_have_one_size_on_every_link(CellConstruction construction, int relays)
    {
        var parameters = new NetworkParameters { Construction = construction };
        using var tunnel = InMemoryTunnel.Open(parameters, relays, seed: 1100 + relays);
        var capture = LinkFilter.CaptureAll();
        var message = new byte[(2 * tunnel.Origin.ForwardPayloadCapacity) + 1];
        new Random(relays).NextBytes(message);

        var forward = tunnel.SendForward(message, capture);
        var backward = tunnel.SendBackward(message, capture);
        var error = tunnel.SendError(relays + 1, TunnelErrorKind.HandlerFailed, capture);

        Assert.All(Enumerable.Range(1, relays + 1), hop => Assert.Equal(OnionHeader.SizeFor(parameters), tunnel.HeaderReceivedBy(hop).Length));
        TunnelAssert.Delivered(message, forward);
        TunnelAssert.Delivered(message, backward);
        TunnelAssert.FailedAt(error, TunnelErrorKind.HandlerFailed, 0, relays + 1);
        TunnelAssert.UniformLinks(forward, parameters.CellSize, relays + 1);
        TunnelAssert.UniformLinks(backward, parameters.CellSize, relays + 1);
        TunnelAssert.UniformLinks(error, parameters.CellSize, relays + 1);
        Assert.Equal(2 * (relays + 1), capture.Cells.Count);
        Assert.All(capture.Cells.Values.SelectMany(c => c), cell => Assert.Equal(parameters.CellSize, cell.Length));
        var forwardCells = InMemoryTunnel.Split(message.Length, tunnel.Origin.ForwardPayloadCapacity).Count();
        var backwardCells = InMemoryTunnel.Split(message.Length, tunnel.Destination.BackwardPayloadCapacity).Count() + 1;
        Assert.All(capture.Cells, link => Assert.Equal(link.Key.Direction == Direction.Forward ? forwardCells : backwardCells, link.Value.Count));
    }

    /// <summary>
    /// Unused MAC-array entries are filled from a keystream, and each relay refills the entry it
    /// frees: a zero or repeated entry at any hop would show how far along the route it is.
    /// </summary>
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(8)]
    [InlineData(31)]
    [InlineData(32)]
    public void MAC_array_entries_are_never_zero_or_repeated_at_any_hop(int relays)
    {
        var parameters = new NetworkParameters { Construction = CellConstruction.MacArray };
        using var tunnel = InMemoryTunnel.Open(parameters, relays, seed: 1120 + relays);
        var capture = LinkFilter.CaptureAll();
        var entries = parameters.MaxRelays + 1;

        TunnelAssert.Delivered(new byte[5000], tunnel.SendForward(new byte[5000], capture));

        Assert.Equal(relays + 1, capture.Cells.Count);
        foreach (var ((_, receiver), cells) in capture.Cells)
        {
            foreach (var cell in cells)
            {
                var seen = new HashSet<string>();
                for (var e = 0; e < entries; e++)
                {
                    var entry = cell.AsSpan(e * 16, 16);
                    Assert.True(entry.IndexOfAnyExcept((byte)0) >= 0, $"entry {e} is zero at hop {receiver}");
                    Assert.True(seen.Add(Convert.ToHexString(entry)), $"entry {e} repeats at hop {receiver}");
                }
            }
        }
    }
}
