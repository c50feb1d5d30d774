using System.Globalization;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace Overlay.Bench;

/// <summary>Derives per-byte figures from the mean time per operation and its bytes: the CellSize parameter, or a whole link message.</summary>
internal sealed class ThroughputColumn : IColumn
{
    public static readonly ThroughputColumn MegabytesPerSecond = new("MB/s", "Cell bytes per second on one core (10^6 B/s): CellSize / Mean", (bytes, ns) => bytes / ns * 1e3);

    public static readonly ThroughputColumn MicrosecondsPerKibibyte = new("us/KiB", "Mean time per 1024 bytes of cell", (bytes, ns) => ns / 1e3 / (bytes / 1024.0));

    private readonly Func<double, double, double> _derive;

    private ThroughputColumn(string name, string legend, Func<double, double, double> derive)
    {
        ColumnName = name;
        Legend = legend;
        _derive = derive;
    }

    public string Id => nameof(ThroughputColumn) + ColumnName;

    public string ColumnName { get; }

    public string Legend { get; }

    public bool AlwaysShow => true;

    public ColumnCategory Category => ColumnCategory.Custom;

    public int PriorityInCategory => 0;

    public bool IsNumeric => true;

    public UnitType UnitType => UnitType.Dimensionless;

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase)
    {
        var mean = summary[benchmarkCase]?.ResultStatistics?.Mean;
        var bytes = benchmarkCase.Parameters[nameof(CellBenchmarks.CellSize)] as int?
            ?? (benchmarkCase.Descriptor.Type == typeof(LinkMessageBenchmarks) ? LinkMessageBenchmarks.MessageBytes : null);
        return mean is > 0 && bytes is int size
            ? _derive(size, mean.Value).ToString("N2", CultureInfo.InvariantCulture)
            : "-";
    }

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style) => GetValue(summary, benchmarkCase);

    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;

    public bool IsAvailable(Summary summary) => true;
}
