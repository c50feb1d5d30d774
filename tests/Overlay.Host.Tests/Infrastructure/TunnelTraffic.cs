using System.Security.Cryptography;
using Overlay.Host.Tunnels;

namespace Overlay.Host.Tests.Infrastructure;

/// <summary>
/// Writes a deterministic pseudo-random request of a given length into a tunnel, in writes of
/// the tunnel's preferred size, hashing what it sent and counting what the tunnel accepted.
/// </summary>
internal sealed class TunnelWriter(OverlayTunnel tunnel, long total, int seed)
{
    private readonly TaskCompletionSource _paused = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _resumed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _finished;

    /// <summary>If set, the writer pauses once this many bytes were written, until <see cref="Resume"/>.</summary>
    public long? PauseAfter { get; init; }

    /// <summary>Completes when the writer reached <see cref="PauseAfter"/>.</summary>
    public Task Paused => _paused.Task;

    public void Resume() => _resumed.TrySetResult();

    /// <summary>Request bytes whose write completed, as a count a test can wait on.</summary>
    public ProgressCounter Progress { get; } = new();

    /// <summary>Request bytes whose write completed.</summary>
    public long Written => Progress.Value;

    /// <summary>True once the final write (with the end marker) completed.</summary>
    public bool Finished => Volatile.Read(ref _finished) != 0;

    /// <summary>SHA-256 of every byte written, once finished.</summary>
    public byte[]? Hash { get; private set; }

    /// <summary>Optional bytes the request starts with (a stall tag).</summary>
    public byte[]? Prefix { get; init; }

    /// <summary>
    /// Asserts that the windows hold this writer while its far end does not read: it gets at least
    /// <paramref name="atLeast"/> bytes through (waited for as an event), then does not pass
    /// <paramref name="atMost"/> while watched. Neither can fail on a slow machine: starving the
    /// writer only slows it. Returns where it was held.
    /// </summary>
    public async Task<long> AssertHeldAsync(long atLeast, long atMost, CancellationToken cancellationToken)
    {
        await Progress.ReachedAsync(atLeast).WaitAsync(cancellationToken);
        Assert.True(await Progress.StaysAtMostAsync(atMost, cancellationToken), $"the writer got {Written:N0} bytes through, past {atMost:N0}");
        return Written;
    }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        try
        {
            await WriteAllAsync(cancellationToken);
        }
        catch (Exception exception)
        {
            // Whoever waits on the progress learns why it stopped, rather than waiting out its deadline.
            Progress.Fail(exception);
            throw;
        }
    }

    private async Task WriteAllAsync(CancellationToken cancellationToken)
    {
        var random = new Random(seed);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var chunk = new byte[tunnel.PreferredWriteSize];
        for (long sent = 0; sent < total;)
        {
            var count = (int)Math.Min(chunk.Length, total - sent);
            random.NextBytes(chunk.AsSpan(0, count));
            if (sent == 0 && Prefix is { } prefix)
            {
                prefix.CopyTo(chunk, 0);
            }

            hash.AppendData(chunk, 0, count);
            sent += count;
            await tunnel.WriteAsync(chunk.AsMemory(0, count), final: sent == total, cancellationToken);
            Progress.Add(count);
            if (PauseAfter is { } pause && sent >= pause && !_resumed.Task.IsCompleted)
            {
                _paused.TrySetResult();
                await _resumed.Task.WaitAsync(cancellationToken);
            }
        }

        Hash = hash.GetHashAndReset();
        Volatile.Write(ref _finished, 1);
    }
}

/// <summary>Reads a tunnel's reply to its end, hashing it, and records how far the writer was when the first reply bytes arrived.</summary>
internal sealed class TunnelReader(OverlayTunnel tunnel)
{
    private readonly List<(long Bytes, TaskCompletionSource Reached)> _marks = [];
    private long _received;

    /// <summary>Completes once <paramref name="bytes"/> reply bytes were read. Register before reading starts.</summary>
    public Task ReachedAsync(long bytes)
    {
        var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_marks)
        {
            _marks.Add((bytes, reached));
        }

        return reached.Task;
    }

    /// <summary>Reply bytes read so far.</summary>
    public long Received => Interlocked.Read(ref _received);

    /// <summary>The writer's progress when the first reply bytes were read (-1 before).</summary>
    public long WrittenAtFirstReply { get; private set; } = -1;

    /// <summary>Whether the writer had finished when the first reply bytes were read.</summary>
    public bool WriterFinishedAtFirstReply { get; private set; }

    /// <summary>Reads to the reply's end; returns the SHA-256 of the reply.</summary>
    public async Task<byte[]> RunAsync(TunnelWriter? writer, CancellationToken cancellationToken)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[tunnel.PreferredWriteSize];
        int read;
        while ((read = await tunnel.ReadAsync(buffer, cancellationToken)) > 0)
        {
            if (WrittenAtFirstReply < 0 && writer is not null)
            {
                WriterFinishedAtFirstReply = writer.Finished;
                WrittenAtFirstReply = writer.Written;
            }

            hash.AppendData(buffer, 0, read);
            var received = Interlocked.Add(ref _received, read);
            lock (_marks)
            {
                foreach (var (bytes, reached) in _marks)
                {
                    if (received >= bytes)
                    {
                        reached.TrySetResult();
                    }
                }
            }
        }

        return hash.GetHashAndReset();
    }
}

/// <summary>Small helpers over a tunnel's reply.</summary>
internal static class TunnelTraffic
{
    /// <summary>Reads the reply to its end marker.</summary>
    public static async Task<byte[]> ReadToEndAsync(OverlayTunnel tunnel, CancellationToken cancellationToken)
    {
        using var reply = new MemoryStream();
        var buffer = new byte[tunnel.PreferredWriteSize];
        int read;
        while ((read = await tunnel.ReadAsync(buffer, cancellationToken)) > 0)
        {
            reply.Write(buffer, 0, read);
        }

        return reply.ToArray();
    }
}
