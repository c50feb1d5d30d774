using Google.Protobuf;
using Grpc.Core;

namespace Overlay.Client.Internal;

/// <summary>One tunnel's gRPC call as bytes both ways (OpenTunnel at the origin, Accept at the destination).</summary>
internal interface ITunnelCall : IDisposable
{
    /// <summary>The next message's bytes and whether it ends the incoming side; null once the call has ended.</summary>
    Task<(ReadOnlyMemory<byte> Data, bool End)?> ReadAsync(CancellationToken cancellationToken);

    Task WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken);

    /// <summary>Sends the end marker and closes the request stream.</summary>
    Task WriteEndAsync(CancellationToken cancellationToken);
}

/// <summary>The two tunnel calls differ only in their message types.</summary>
internal sealed class TunnelCall<TRequest, TResponse>(
    AsyncDuplexStreamingCall<TRequest, TResponse> call,
    Func<ByteString, TRequest> data,
    Func<TRequest> end,
    Func<TResponse, (ByteString Data, bool End)> read) : ITunnelCall
{
    public async Task<(ReadOnlyMemory<byte> Data, bool End)?> ReadAsync(CancellationToken cancellationToken)
    {
        if (!await call.ResponseStream.MoveNext(cancellationToken))
        {
            return null;
        }

        var (bytes, ended) = read(call.ResponseStream.Current);
        return (bytes.Memory, ended);
    }

    // The message is serialized before WriteAsync completes, so wrapping the caller's buffer is safe.
    public async Task WriteAsync(ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken)
    {
        try
        {
            await call.RequestStream.WriteAsync(data(UnsafeByteOperations.UnsafeWrap(bytes)), cancellationToken);
        }
        catch (Exception exception) when (EndedByNode(exception, cancellationToken) is { } ended)
        {
            throw ended;
        }
    }

    public async Task WriteEndAsync(CancellationToken cancellationToken)
    {
        try
        {
            await call.RequestStream.WriteAsync(end(), cancellationToken);
            await call.RequestStream.CompleteAsync();
        }
        catch (Exception exception) when (EndedByNode(exception, cancellationToken) is { } ended)
        {
            throw ended;
        }
        catch (Exception exception) when (exception is InvalidOperationException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            // The node is ending the call and its status has not arrived yet: there is no request left to end, and
            // the next read reports the node's status (as a read always does), so nothing is lost by returning.
        }
    }

    // A write that races the node ending the call fails as "cancelled" or "call is complete", depending on
    // timing: the caller must see the node's status instead, as a read would.
    private RpcException? EndedByNode(Exception exception, CancellationToken cancellationToken)
    {
        if (exception is not (InvalidOperationException or OperationCanceledException) || cancellationToken.IsCancellationRequested)
        {
            return null;
        }

        try
        {
            var status = call.GetStatus();
            return status.StatusCode == StatusCode.OK ? null : new RpcException(status, call.GetTrailers());
        }
        catch (InvalidOperationException)
        {
            // The call has no status yet: the write failed for a reason of its own, reported as it is.
            return null;
        }
    }

    public void Dispose() => call.Dispose();
}
