using BenchmarkDotNet.Analysers;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Exporters;
using BenchmarkDotNet.Filters;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Loggers;
using BenchmarkDotNet.Order;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Overlay.Protocol;

namespace Overlay.Bench;

/// <summary>
/// <c>crypto [--quick]</c>: the header and cell micro-benchmarks, in process (no project is
/// generated per benchmark) with a short job. Each benchmark runs a fixed number of invocations
/// per iteration because its iteration setup prepares exactly that many headers or cells.
/// </summary>
internal static class CryptoCommand
{
    public static int Run(bool quick)
    {
        var headers = Config(quick, HeaderBenchmarks.HeadersPerIteration)
            .AddDiagnoser(MemoryDiagnoser.Default);
        var cells = Config(quick, CellBenchmarks.CellsPerIteration)
            .AddColumn(ThroughputColumn.MicrosecondsPerKibibyte, ThroughputColumn.MegabytesPerSecond)
            .AddFilter(new SimpleFilter(c => CellBenchmarks.IsValid(
                (CellConstruction)c.Parameters[nameof(CellBenchmarks.Construction)],
                (int)c.Parameters[nameof(CellBenchmarks.CellSize)])));

        var summaries = BenchmarkRunner.Run(
        [
            BenchmarkConverter.TypeToBenchmarks(typeof(HeaderBenchmarks), headers),
            BenchmarkConverter.TypeToBenchmarks(typeof(CellBenchmarks), cells),
        ]);
        return summaries.All(s => !s.HasCriticalValidationErrors && s.Reports.All(r => r.Success)) ? 0 : 1;
    }

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
