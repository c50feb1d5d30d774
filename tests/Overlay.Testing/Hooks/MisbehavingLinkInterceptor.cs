using Grpc.Core;
using Grpc.Core.Interceptors;

namespace Overlay.Testing.Hooks;

/// <summary>The interceptor of one node; see <see cref="Misbehaviours"/>. Only Link calls misbehave, never the control API.</summary>
internal sealed class MisbehavingLinkInterceptor(Misbehaviours misbehaviours, string node) : Interceptor
{
    public override async Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        switch (LinkCalls.IsLink(context) ? misbehaviours.Of(node) : RelayMisbehaviour.None)
        {
            case RelayMisbehaviour.SwallowAndEnd:
                while (await requestStream.MoveNext(context.CancellationToken))
                {
                }

                return;
            case RelayMisbehaviour.Refuse:
                throw new RpcException(new Status(StatusCode.Unavailable, "refused by the test"));
            case RelayMisbehaviour.HoldAfterFirstMessage:
                await continuation(new HeldReader<TRequest>(requestStream, misbehaviours.Released), responseStream, context);
                return;
            default:
                await continuation(requestStream, responseStream, context);
                return;
        }
    }

    /// <summary>Passes the first message on, then waits for a release before reading on (later reads pass straight through).</summary>
    private sealed class HeldReader<T>(IAsyncStreamReader<T> inner, Task released) : IAsyncStreamReader<T>
    {
        private int _reads;

        public T Current => inner.Current;

        // Straight through once released, so a read of a message already buffered still completes synchronously.
        public Task<bool> MoveNext(CancellationToken cancellationToken) =>
            _reads++ == 1 ? HeldAsync(cancellationToken) : inner.MoveNext(cancellationToken);

        private async Task<bool> HeldAsync(CancellationToken cancellationToken)
        {
            await released.WaitAsync(cancellationToken);
            return await inner.MoveNext(cancellationToken);
        }
    }
}
