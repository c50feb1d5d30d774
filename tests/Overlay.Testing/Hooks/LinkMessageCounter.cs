using System.Collections.Concurrent;
using Overlay.Testing.Cluster;

namespace Overlay.Testing.Hooks;

/// <summary>
/// Records the request and response messages of each incoming duplex call (one per tunnel hop) on
/// every node of a <see cref="TestCluster"/>, and notes link messages with fields the schema does
/// not have, through a server interceptor (<see cref="LinkMessageInterceptor"/>).
/// </summary>
internal sealed class LinkMessageCounter
{
    private readonly ConcurrentQueue<LinkCall> _calls = new();
    private readonly ConcurrentQueue<string> _unknownFields = new();
    private readonly SemaphoreSlim _recorded = new(0);

    /// <summary>While false, nothing is recorded (calls that start while it is false are never recorded).</summary>
    public bool Enabled { get; set; }

    /// <summary>Every call that ended, with the node that served it.</summary>
    public IReadOnlyList<LinkCall> Calls => [.. _calls];

    /// <summary>The nodes that received a link message carrying a field the schema does not have, once per message.</summary>
    public IReadOnlyList<string> UnknownFieldsAt => [.. _unknownFields];

    internal void RecordUnknownFields(string node) => _unknownFields.Enqueue(node);

    internal void Record(LinkCall call)
    {
        _calls.Enqueue(call);
        _recorded.Release();
    }

    /// <summary>Waits until <paramref name="count"/> more calls than <paramref name="seen"/> have ended.</summary>
    public async Task<IReadOnlyList<LinkCall>> WaitForCallsAsync(int seen, int count, CancellationToken cancellationToken)
    {
        while (_calls.Count < seen + count)
        {
            await _recorded.WaitAsync(cancellationToken);
        }

        return [.. _calls.Skip(seen).Take(count)];
    }
}
