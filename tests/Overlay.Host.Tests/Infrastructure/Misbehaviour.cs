using System.Collections.Concurrent;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace Overlay.Host.Tests.Infrastructure;

/// <summary>What a test makes a node of a <see cref="TestCluster"/> do wrong on its incoming tunnel hops.</summary>
internal enum RelayMisbehaviour
{
    /// <summary>Honest: the node's own relay and destination code runs.</summary>
    None,

    /// <summary>Reads the whole request, forwards nothing, and ends the call normally (status OK).</summary>
    SwallowAndEnd,

    /// <summary>Ends every incoming hop at once with Unavailable and no reason, as an unreachable node looks.</summary>
    Refuse,

    /// <summary>
    /// Honest, but reads nothing after a hop's first message until <see cref="Misbehaviours.Release"/>: what
    /// the predecessor sends meanwhile waits, already received, in the hop's buffers.
    /// </summary>
    HoldAfterFirstMessage,
}

/// <summary>
/// Per-node misbehaviour of a <see cref="TestCluster"/>, applied by <see cref="MisbehavingLinkInterceptor"/> in
/// front of the node's Link service: a relay that follows the protocol only when it suits it.
/// </summary>
internal sealed class Misbehaviours
{
    private readonly ConcurrentDictionary<string, RelayMisbehaviour> _byNode = new(StringComparer.Ordinal);

    public void Set(ClusterNode node, RelayMisbehaviour misbehaviour) => _byNode[node.Name] = misbehaviour;

    public RelayMisbehaviour Of(string node) => _byNode.GetValueOrDefault(node);

    private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Lets held hops read again.</summary>
    public void Release() => _released.TrySetResult();

    internal Task Released => _released.Task;
}

/// <summary>The interceptor of one node; see <see cref="Misbehaviours"/>.</summary>
internal sealed class MisbehavingLinkInterceptor(Misbehaviours misbehaviours, string node) : Interceptor
{
    public override async Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        switch (misbehaviours.Of(node))
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
}

/// <summary>Passes the first message on, then waits for a release before reading on (later reads pass straight through).</summary>
internal sealed class HeldReader<T>(IAsyncStreamReader<T> inner, Task released) : IAsyncStreamReader<T>
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
