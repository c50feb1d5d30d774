using System.Runtime.ExceptionServices;
using Google.Protobuf;
using Grpc.Core;

namespace Overlay.Host.Control;

/// <summary>What every streaming tunnel call shares: running both directions, and the end of a request stream.</summary>
internal static class ControlStreams
{
    // After `end`, the caller still closes its request stream; anything more is an error.
    public static async Task DrainAsync<T>(IAsyncStreamReader<T> requests, CancellationToken token)
        where T : IMessage
    {
        while (await requests.MoveNext(token))
        {
            if (requests.Current.CalculateSize() != 0)
            {
                throw ControlErrors.InvalidArgument("nothing may follow `end`");
            }
        }
    }

    /// <summary>
    /// Runs both directions of a tunnel; the first failure cancels the other and is the one
    /// reported. A CloseTunnel ends the call with Cancelled.
    /// </summary>
    public static async Task PumpBothAsync(ControlTunnel entry, ServerCallContext context, Func<CancellationToken, Task> forward, Func<CancellationToken, Task> backward,
        CancellationToken tunnelToken = default)
    {
        using var both = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, entry.Closing.Token, tunnelToken);
        Exception? first = null;
        async Task Run(Func<CancellationToken, Task> pump)
        {
            try
            {
                await pump(both.Token);
            }
            catch (Exception exception)
            {
                Interlocked.CompareExchange(ref first, exception, null);
                await both.CancelAsync();
            }
        }

        await Task.WhenAll(Run(forward), Run(backward));
        if (entry.CloseRequested)
        {
            throw ControlErrors.Error(StatusCode.Cancelled, "closed", $"tunnel {entry.Id} was closed by CloseTunnel");
        }

        if (first is not null)
        {
            if (first is OperationCanceledException && context.CancellationToken.IsCancellationRequested)
            {
                throw first; // the caller went away or its deadline passed
            }

            ExceptionDispatchInfo.Throw(first);
        }
    }
}
