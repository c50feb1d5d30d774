using System.Diagnostics;
using System.Runtime;

namespace Overlay.Bench.Network;

/// <summary>Process-wide memory at one moment: the managed heap after a full, compacting GC, and the working set.</summary>
/// <param name="ManagedBytes">Live managed objects after a full, compacting GC.</param>
/// <param name="WorkingSetBytes">The process's resident set.</param>
/// <param name="GcCommittedBytes">Memory the GC has committed (live objects, free space it keeps, bookkeeping).</param>
internal readonly record struct MemorySnapshot(long ManagedBytes, long WorkingSetBytes, long GcCommittedBytes);

/// <summary>Statistics and memory probes of the network harness.</summary>
internal static class Measure
{
    public const double MiB = 1024 * 1024;

    /// <summary>The GC this process runs under, as every memory figure names it.</summary>
    public static string GcDescription
    {
        get
        {
            var concurrent = AppContext.GetData("System.GC.Concurrent") is bool c ? c : true;
            var datas = AppContext.GetData("System.GC.DynamicAdaptationMode") ?? Environment.GetEnvironmentVariable("DOTNET_GCDynamicAdaptationMode");
            var conserve = AppContext.GetData("System.GC.ConserveMemory") ?? Environment.GetEnvironmentVariable("DOTNET_GCConserveMemory");
            return $"{(GCSettings.IsServerGC ? "Server" : "Workstation")} GC, concurrent {(concurrent ? "on" : "off")}, "
                + $"latency mode {GCSettings.LatencyMode}, DynamicAdaptationMode {datas ?? "default"}, ConserveMemory {conserve ?? "default"}, "
                + $"{Environment.ProcessorCount} cores";
        }
    }

    /// <summary>
    /// Whether the nodes export telemetry: they do when an OTLP endpoint is configured or an
    /// OTEL_EXPORTER_OTLP_*ENDPOINT variable is set (TelemetrySetup); the figures are taken without.
    /// </summary>
    public static string TelemetryDescription(IEnumerable<string> nodeArguments)
    {
        var variable = Environment.GetEnvironmentVariable("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") ?? Environment.GetEnvironmentVariable("OTEL_EXPORTER_OTLP_ENDPOINT");
        var argument = nodeArguments.FirstOrDefault(a => a.Contains("OtlpEndpoint", StringComparison.OrdinalIgnoreCase));
        return argument is not null ? $"OTLP export on ({argument})"
            : variable is not null ? $"OTLP export on (OTEL_EXPORTER_OTLP_ENDPOINT {variable})"
            : "off: no OTLP endpoint configured, no OTEL_EXPORTER_OTLP_*ENDPOINT variable (traces and metrics are created but not exported)";
    }

    /// <summary>A full, blocking, compacting collection (large-object heap included), then both figures.</summary>
    public static MemorySnapshot Settle()
    {
        GCSettings.LargeObjectHeapCompactionMode = GCLargeObjectHeapCompactionMode.CompactOnce;
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        return new MemorySnapshot(GC.GetTotalMemory(forceFullCollection: false), Environment.WorkingSet, GC.GetGCMemoryInfo(GCKind.Any).TotalCommittedBytes);
    }

    public static double Median(IReadOnlyList<double> values) => Percentile(values, 50);

    /// <summary>Nearest-rank percentile.</summary>
    public static double Percentile(IReadOnlyList<double> values, double percent)
    {
        if (values.Count == 0)
        {
            return double.NaN;
        }

        var sorted = values.Order().ToArray();
        if (percent == 50 && sorted.Length % 2 == 0)
        {
            return (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
        }

        var rank = (int)Math.Ceiling(percent / 100 * sorted.Length);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Length - 1)];
    }

    /// <summary>
    /// The highest tail percentile (99, 95 or 90) that <paramref name="count"/> samples support,
    /// taken as at least 5 samples at or beyond it; 0 when not even p90 is supported. Over 60
    /// samples a "p99" is the maximum: this says p90.
    /// </summary>
    public static int SupportedTail(int count) => count >= 500 ? 99 : count >= 100 ? 95 : count >= 50 ? 90 : 0;

    public static double Milliseconds(long startTimestamp) => Stopwatch.GetElapsedTime(startTimestamp).TotalMilliseconds;
}

/// <summary>Samples the working set until disposed and keeps the peak (every 20 ms).</summary>
internal sealed class PeakWorkingSet : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private long _peak;

    public PeakWorkingSet()
    {
        _peak = Environment.WorkingSet;
        _loop = Task.Run(async () =>
        {
            using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(20));
            try
            {
                while (await timer.WaitForNextTickAsync(_stop.Token))
                {
                    Sample();
                }
            }
            catch (OperationCanceledException)
            {
                // Stopped.
            }
        });
    }

    public long Peak
    {
        get
        {
            Sample();
            return Interlocked.Read(ref _peak);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _loop;
        _stop.Dispose();
    }

    private void Sample()
    {
        var now = Environment.WorkingSet;
        long seen;
        while (now > (seen = Interlocked.Read(ref _peak)) && Interlocked.CompareExchange(ref _peak, now, seen) != seen)
        {
        }
    }
}
