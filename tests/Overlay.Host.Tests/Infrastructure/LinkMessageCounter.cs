using System.Collections.Concurrent;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Overlay.Protocol.V1;

namespace Overlay.Host.Tests.Infrastructure;

/// <summary>
/// Counts the request messages of each incoming duplex call (one per tunnel hop) on every node of a
/// <see cref="TestCluster"/>, and notes link messages with fields the schema does not have, through a
/// server interceptor (<see cref="LinkMessageInterceptor"/>).
/// </summary>
internal sealed class LinkMessageCounter
{
    private readonly ConcurrentQueue<(string Node, int Messages, int Replies)> _calls = new();
    private readonly ConcurrentQueue<string> _unknownFields = new();

    /// <summary>While false, nothing is counted.</summary>
    public bool Enabled { get; set; }

    /// <summary>The request and reply messages of each call that ended, with the node that served it.</summary>
    public IReadOnlyList<(string Node, int Messages, int Replies)> Calls => [.. _calls];

    /// <summary>The nodes that received a link message carrying a field the schema does not have, once per message.</summary>
    public IReadOnlyList<string> UnknownFieldsAt => [.. _unknownFields];

    internal void RecordUnknownFields(string node) => _unknownFields.Enqueue(node);

    private readonly SemaphoreSlim _recorded = new(0);

    internal void Record(string node, int messages, int replies)
    {
        _calls.Enqueue((node, messages, replies));
        _recorded.Release();
    }

    /// <summary>Waits until <paramref name="count"/> more calls than <paramref name="seen"/> have ended.</summary>
    public async Task<IReadOnlyList<(string Node, int Messages, int Replies)>> WaitForCallsAsync(int seen, int count, CancellationToken cancellationToken)
    {
        while (_calls.Count < seen + count)
        {
            await _recorded.WaitAsync(cancellationToken);
        }

        return [.. _calls.Skip(seen).Take(count)];
    }
}

/// <summary>The interceptor of one node; see <see cref="LinkMessageCounter"/>.</summary>
internal sealed class LinkMessageInterceptor(LinkMessageCounter counter, string node) : Interceptor
{
    public override async Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        if (!counter.Enabled)
        {
            await continuation(requestStream, responseStream, context);
            return;
        }

        var counting = new CountingReader<TRequest>(requestStream, message =>
        {
            // Only the known fields, re-encoded: any difference in size is a field the schema does not have.
            if (message is LinkMessage link && new LinkMessage { Header = link.Header, Cells = link.Cells }.CalculateSize() != link.CalculateSize())
            {
                counter.RecordUnknownFields(node);
            }
        });
        var replies = new CountingWriter<TResponse>(responseStream);
        try
        {
            await continuation(counting, replies, context);
        }
        finally
        {
            counter.Record(node, counting.Count, replies.Count);
        }
    }

    private sealed class CountingReader<T>(IAsyncStreamReader<T> inner, Action<T> inspect) : IAsyncStreamReader<T>
    {
        public int Count { get; private set; }

        public T Current => inner.Current;

        public async Task<bool> MoveNext(CancellationToken cancellationToken)
        {
            var more = await inner.MoveNext(cancellationToken);
            if (more)
            {
                Count++;
                inspect(inner.Current);
            }

            return more;
        }
    }

    private sealed class CountingWriter<T>(IServerStreamWriter<T> inner) : IServerStreamWriter<T>
    {
        private int _count;

        public int Count => Volatile.Read(ref _count);

        public WriteOptions? WriteOptions
        {
            get => inner.WriteOptions;
            set => inner.WriteOptions = value;
        }

        public async Task WriteAsync(T message)
        {
            await inner.WriteAsync(message);
            Interlocked.Increment(ref _count);
        }

        public async Task WriteAsync(T message, CancellationToken cancellationToken)
        {
            await inner.WriteAsync(message, cancellationToken);
            Interlocked.Increment(ref _count);
        }
    }
}
