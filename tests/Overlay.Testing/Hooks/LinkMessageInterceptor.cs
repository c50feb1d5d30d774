using Google.Protobuf;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Overlay.Protocol.V1;

namespace Overlay.Testing.Hooks;

/// <summary>The interceptor of one node; see <see cref="LinkMessageCounter"/>.</summary>
internal sealed class LinkMessageInterceptor(LinkMessageCounter counter, string node) : Interceptor
{
    public override async Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        if (!counter.Enabled || !LinkCalls.IsLink(context))
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
