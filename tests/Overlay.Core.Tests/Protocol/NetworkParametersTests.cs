using Overlay.Cells;
using Overlay.Protocol;

namespace Overlay.Tests.Protocol;

public sealed class NetworkParametersTests
{
    [Theory]
    [InlineData(0, 4096, CellConstruction.Baseline)]
    [InlineData(255, 16384, CellConstruction.Baseline)]
    [InlineData(32, 496, CellConstruction.Baseline)]
    [InlineData(32, 4100, CellConstruction.Baseline)]
    [InlineData(32, 32 * 1024 + 16, CellConstruction.Baseline)]
    [InlineData(32, 4096, (CellConstruction)3)]
    [InlineData(254, 4096, CellConstruction.MacArray)] // 255 MACs leave no room for a payload
    [InlineData(32, 512, CellConstruction.MacArray)]
    public void Unusable_parameters_are_refused_with_a_reason(int maxRelays, int cellSize, CellConstruction construction)
    {
        var parameters = new NetworkParameters { MaxRelays = maxRelays, CellSize = cellSize, Construction = construction };

        Assert.False(string.IsNullOrWhiteSpace(parameters.Validate()));
        Assert.Throws<ArgumentException>(() => parameters.EnsureValid());
        Assert.Throws<ArgumentException>(() => new CellLayout(parameters));
    }

    [Theory]
    [InlineData(1, 512, CellConstruction.Baseline, 493)]
    [InlineData(32, 4096, CellConstruction.Baseline, 4077)]
    [InlineData(32, 4096, CellConstruction.MacArray, 4096 - (33 * 16) - 19)]
    [InlineData(126, 4096, CellConstruction.MacArray, 2045)]
    [InlineData(126, 16384, CellConstruction.MacArray, 14333)]
    [InlineData(254, 32 * 1024, CellConstruction.MacArray, (32 * 1024) - (255 * 16) - 19)]
    public void Usable_parameters_give_the_documented_payload_capacity(int maxRelays, int cellSize, CellConstruction construction, int forwardCapacity)
    {
        var parameters = new NetworkParameters { MaxRelays = maxRelays, CellSize = cellSize, Construction = construction };

        Assert.Null(parameters.Validate());
        var layout = new CellLayout(parameters);
        Assert.Equal(forwardCapacity, layout.ForwardPayloadCapacity);
        Assert.Equal(cellSize - 19, layout.BackwardPayloadCapacity);
        Assert.Equal(cellSize - 16, layout.PlaintextBufferSize);
    }

    [Fact]
    public void The_defaults_are_32_relays_4_KiB_cells_and_the_baseline()
    {
        Assert.Equal(new NetworkParameters { MaxRelays = 32, CellSize = 4096, Construction = CellConstruction.Baseline }, NetworkParameters.Default);
        Assert.Null(NetworkParameters.Default.Validate());
    }
}
