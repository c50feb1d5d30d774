using System.Collections.Concurrent;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Google.Protobuf;
using Overlay.Protocol.V1;

namespace Overlay.Host.Tests.Infrastructure;

/// <summary>
/// One incoming duplex link call (one tunnel hop) as the node that served it saw it: the encoded
/// size of every message it received and of every message it sent back, in order. On the wire each
/// message also has gRPC's fixed 5-byte length prefix.
/// </summary>
internal sealed record LinkCall(string Node, int HeaderBytes, IReadOnlyList<int> RequestSizes, IReadOnlyList<int> ResponseSizes)
{
    /// <summary>Request messages received.</summary>
    public int Messages => RequestSizes.Count;

    /// <summary>Response messages sent.</summary>
    public int Replies => ResponseSizes.Count;
}

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

        var headerBytes = -1;
        var requests = new RecordingReader<TRequest>(requestStream, message =>
        {
            if (message is LinkMessage link)
            {
                if (headerBytes < 0)
                {
                    headerBytes = link.Header.Length;
                }

                // Only the known fields, re-encoded: any difference in size is a field the schema does not have.
                if (new LinkMessage { Header = link.Header, Cells = link.Cells }.CalculateSize() != link.CalculateSize())
                {
                    counter.RecordUnknownFields(node);
                }
            }
        });
        var responses = new RecordingWriter<TResponse>(responseStream);
        try
        {
            await continuation(requests, responses, context);
        }
        finally
        {
            counter.Record(new LinkCall(node, headerBytes, requests.Sizes, responses.Sizes));
        }
    }

    // Sizes are taken as the message passes, before the node's code lets go of its buffers.
    private static int SizeOf<T>(T message) => message is IMessage protobuf ? protobuf.CalculateSize() : throw new InvalidOperationException($"{typeof(T)} is not a protobuf message");

    private sealed class RecordingReader<T>(IAsyncStreamReader<T> inner, Action<T> inspect) : IAsyncStreamReader<T>
    {
        private readonly List<int> _sizes = [];

        public IReadOnlyList<int> Sizes => [.. _sizes];

        public T Current => inner.Current;

        public async Task<bool> MoveNext(CancellationToken cancellationToken)
        {
            var more = await inner.MoveNext(cancellationToken);
            if (more)
            {
                _sizes.Add(SizeOf(inner.Current));
                inspect(inner.Current);
            }

            return more;
        }
    }

    private sealed class RecordingWriter<T>(IServerStreamWriter<T> inner) : IServerStreamWriter<T>
    {
        private readonly List<int> _sizes = [];
        private readonly Lock _lock = new();

        public IReadOnlyList<int> Sizes
        {
            get
            {
                lock (_lock)
                {
                    return [.. _sizes];
                }
            }
        }

        public WriteOptions? WriteOptions
        {
            get => inner.WriteOptions;
            set => inner.WriteOptions = value;
        }

        public async Task WriteAsync(T message)
        {
            var size = SizeOf(message);
            await inner.WriteAsync(message);
            Add(size);
        }

        public async Task WriteAsync(T message, CancellationToken cancellationToken)
        {
            var size = SizeOf(message);
            await inner.WriteAsync(message, cancellationToken);
            Add(size);
        }

        // Counted once written: a write that failed never reached the wire whole.
        private void Add(int size)
        {
            lock (_lock)
            {
                _sizes.Add(size);
            }
        }
    }
}
