namespace Overlay.Bench.Processes;

/// <summary>How much the multi-process harness does, and what it starts.</summary>
internal sealed record ProcessesSettings(bool Quick)
{
    /// <summary>Node processes (and as many chain hops); the shape is 9.</summary>
    public int Nodes { get; init; } = 9;

    public int Relays => 3;

    /// <summary>The node binary: an Overlay.Host.dll (run with dotnet) or a published executable.</summary>
    public string HostPath { get; init; } = DefaultHostPath();

    /// <summary>Environment of every started process (runtime settings under test, e.g. DOTNET_TieredPGO=0).</summary>
    public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();

    /// <summary>Extra node arguments (e.g. --Overlay:Telemetry:OtlpEndpoint=...).</summary>
    public IReadOnlyList<string> NodeArguments { get; init; } = [];

    public int Repeats => Quick ? 3 : 7;

    public long BulkBytes => (Quick ? 16L : 64L) << 20;

    public long WarmBytes => 32L << 20;

    public int RoundTrips => Quick ? 200 : 1000;

    public int FreshCalls => Quick ? 20 : 80;

    /// <summary>How long round trips are probed right after the overlay forms (cold start).</summary>
    public TimeSpan ColdWindow => TimeSpan.FromSeconds(Quick ? 10 : 40);

    /// <summary>How long a restarted process may take to reach steady-state latency before the harness gives up.</summary>
    public TimeSpan RestartDeadline => TimeSpan.FromSeconds(Quick ? 20 : 60);

    /// <summary>How long the harness waits, after the warm-up, for start-up compilation to end before it measures anyway.</summary>
    public TimeSpan QuietCap => TimeSpan.FromSeconds(Quick ? 30 : 120);

    public TimeSpan FormTimeout => TimeSpan.FromSeconds(90);

    /// <summary>Gossip of run.sh is 250 ms; 1 s here keeps the idle nodes' CPU off the figures (it is measured and subtracted).</summary>
    public string GossipInterval => "00:00:01";

    // src/Overlay.Host/bin/Release/net10.0/Overlay.Host.dll of the repository this harness was built in.
    private static string DefaultHostPath()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Overlay.sln")))
            {
                return Path.Combine(directory.FullName, "src", "Overlay.Host", "bin", "Release", "net10.0", "Overlay.Host.dll");
            }
        }

        return "Overlay.Host.dll";
    }
}
