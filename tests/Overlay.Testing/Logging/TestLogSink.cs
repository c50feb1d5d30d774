using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Overlay.Testing.Logging;

/// <summary>
/// Collects the log entries of every node of a cluster, so a test can wait for a logged event
/// (a refused descriptor, a failed proof) and assert that nothing unexpected was logged at
/// Warning or above (like grpc-dotnet's VerifyNoErrorsScope).
/// </summary>
internal sealed class TestLogSink
{
    private const int Capacity = 200_000;
    private readonly ConcurrentQueue<LogEntry> _entries = new();
    private readonly Lock _signalLock = new();
    private TaskCompletionSource _added = NewSignal();
    private long _count;

    public IReadOnlyList<LogEntry> Entries => [.. _entries];

    /// <summary>Where the log is now: pass it to <see cref="AssertNoUnexpectedWarnings"/> to look only at later entries.</summary>
    public long Position => Interlocked.Read(ref _count);

    /// <summary>Entries at Warning or above, from <paramref name="since"/> on.</summary>
    public IReadOnlyList<LogEntry> WarningsSince(long since) => [.. _entries.Where(e => e.Level >= LogLevel.Warning && e.Sequence >= since)];

    public ILoggerProvider CreateProvider(string node) => new Provider(this, node);

    public void Add(LogEntry entry)
    {
        var sequence = Interlocked.Increment(ref _count) - 1;
        if (sequence < Capacity)
        {
            _entries.Enqueue(entry with { Sequence = sequence });
        }

        TaskCompletionSource signal;
        lock (_signalLock)
        {
            signal = _added;
            _added = NewSignal();
        }

        signal.TrySetResult();
    }

    /// <summary>Waits until an entry matching <paramref name="match"/> has been logged; returns it.</summary>
    public async Task<LogEntry> WaitForAsync(Func<LogEntry, bool> match, string what, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task added;
            lock (_signalLock)
            {
                added = _added.Task;
            }

            if (_entries.FirstOrDefault(match) is { } found)
            {
                return found;
            }

            try
            {
                await added.WaitAsync(cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                throw new TimeoutException($"no log entry for: {what}");
            }
        }
    }

    /// <summary>
    /// Fails when anything at Warning or above was logged from <paramref name="since"/> on
    /// (a <see cref="Position"/>) that <paramref name="expected"/> does not allow.
    /// </summary>
    public void AssertNoUnexpectedWarnings(long since = 0, Func<LogEntry, bool>? expected = null)
    {
        var unexpected = WarningsSince(since).Where(e => expected is null || !expected(e)).ToList();
        Assert.True(unexpected.Count == 0,
            $"{unexpected.Count} unexpected warnings or errors were logged:{Environment.NewLine}{string.Join(Environment.NewLine, unexpected.Take(20))}");
    }

    /// <summary>Writes the entries at Information or above from <paramref name="since"/> on to the test's output.</summary>
    public void WriteTo(ITestOutputHelper output, long since)
    {
        foreach (var entry in _entries.Where(e => e.Sequence >= since && e.Level >= LogLevel.Information))
        {
            output.WriteLine(entry.ToString());
        }
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private sealed class Provider(TestLogSink sink, string node) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new Logger(sink, node, categoryName);

        public void Dispose()
        {
        }
    }

    private sealed class Logger(TestLogSink sink, string node, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            sink.Add(new LogEntry(node, category, logLevel, eventId, formatter(state, exception), exception));
    }
}
