using BenchmarkDotNet.Analysers;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Exporters;
using BenchmarkDotNet.Filters;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Loggers;
using BenchmarkDotNet.Order;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Overlay.Bench.Network;
using Overlay.Protocol;

namespace Overlay.Bench;

/// <summary>
/// <c>crypto [--quick]</c> (and part of <c>all</c>): the header and cell micro-benchmarks, in process (no project is
/// generated per benchmark) with a short job. Each benchmark runs a fixed number of invocations
/// per iteration because its iteration setup prepares exactly that many headers or cells.
/// </summary>
internal static class CryptoCommand
{
    /// <summary>Runs every benchmark; with a <paramref name="report"/>, adds each median to it (the <c>all</c> verb).</summary>
    public static int Run(bool quick, Report? report)
    {
        var headers = Config(quick, HeaderBenchmarks.HeadersPerIteration)
            .AddDiagnoser(MemoryDiagnoser.Default);
        var cells = Config(quick, CellBenchmarks.CellsPerIteration)
            .AddColumn(ThroughputColumn.MicrosecondsPerKibibyte, ThroughputColumn.MegabytesPerSecond)
            .AddFilter(new SimpleFilter(c => CellBenchmarks.IsValid(
                (CellConstruction)c.Parameters[nameof(CellBenchmarks.Construction)],
                (int)c.Parameters[nameof(CellBenchmarks.CellSize)])));

        var messages = Config(quick, LinkMessageBenchmarks.MessagesPerIteration)
            .AddColumn(ThroughputColumn.MicrosecondsPerKibibyte, ThroughputColumn.MegabytesPerSecond);

        var summaries = BenchmarkRunner.Run(
        [
            BenchmarkConverter.TypeToBenchmarks(typeof(HeaderBenchmarks), headers),
            BenchmarkConverter.TypeToBenchmarks(typeof(CellBenchmarks), cells),
            BenchmarkConverter.TypeToBenchmarks(typeof(LinkMessageBenchmarks), messages),
        ]);
        if (report is not null)
        {
            AddMedians(report, summaries);
        }

        return summaries.All(s => !s.HasCriticalValidationErrors && s.Reports.All(r => r.Success)) ? 0 : 1;
    }

    // crypto.<class>.<method>.<parameters>.median_ns, e.g. crypto.cell.relayprocessforward.baseline_4096.median_ns.
    private static void AddMedians(Report report, IEnumerable<Summary> summaries)
    {
        foreach (var summary in summaries)
        {
            foreach (var benchmark in summary.BenchmarksCases)
            {
                var median = summary[benchmark]?.ResultStatistics?.Median;
                var type = benchmark.Descriptor.Type.Name.Replace("Benchmarks", "", StringComparison.Ordinal);
                var parameters = string.Join('_', benchmark.Parameters.Items.Select(p => Slug(p.Value?.ToString() ?? "")));
                var name = $"crypto.{Slug(type)}.{Slug(benchmark.Descriptor.WorkloadMethod.Name)}.{parameters}.median_ns";
                report.Add("Crypto micro-benchmarks (median time per operation, one core)", name,
                    $"{type}.{benchmark.Descriptor.WorkloadMethod.Name} ({benchmark.Parameters.DisplayInfo})", median ?? double.NaN, "ns", "F0");
            }
        }
    }

    private static string Slug(string text) =>
        string.Concat(text.ToLowerInvariant().Select(c => char.IsAsciiLetterOrDigit(c) ? c : '_')).Trim('_').Replace("__", "_", StringComparison.Ordinal);

    private static ManualConfig Config(bool quick, int invocationsPerIteration)
    {
        var job = Job.Default
            .WithToolchain(InProcessEmitToolchain.Instance)
            .WithLaunchCount(1)
            .WithWarmupCount(quick ? 1 : 3)
            .WithIterationCount(quick ? 5 : 10)
            .WithInvocationCount(invocationsPerIteration)
            .WithUnrollFactor(1)
            .WithId(quick ? "Quick" : "Short");

        // Iterations are short on purpose (a batch of cells small enough to stay in cache), so the
        // analyser that asks for 100 ms iterations is left out; the others are BenchmarkDotNet's defaults.
        var defaults = DefaultConfig.Instance;
        return ManualConfig.CreateEmpty()
            .AddJob(job)
            .AddLogger(ConsoleLogger.Default)
            .AddColumnProvider(DefaultColumnProviders.Instance)
            .AddColumn(StatisticColumn.Median)
            .AddExporter(MarkdownExporter.GitHub)
            .AddAnalyser([.. defaults.GetAnalysers().Where(a => a is not MinIterationTimeAnalyser)])
            .AddValidator([.. defaults.GetValidators()])
            .WithOrderer(new DefaultOrderer(SummaryOrderPolicy.Declared));
    }
}
