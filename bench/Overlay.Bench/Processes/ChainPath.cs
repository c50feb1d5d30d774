using System.Diagnostics;
using System.Security.Cryptography;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Overlay.Bench.Network;
using Overlay.Bench.Network.Chain;

namespace Overlay.Bench.Processes;

/// <summary>
/// The baseline in the same shape: the application dials chain hop 0 (in node 0's place), which
/// forwards through the hops of the same route, each a separate process (<c>chain-hop</c>); the
/// last echoes, or for one-way bulk confirms once the request has ended.
/// </summary>
internal sealed class ChainPath : IPathUnderTest, IDisposable
{
    /// <summary>Bytes per message: one link message at the node's defaults (8 × 4,096), as the one-process harness's chain sends.</summary>
    public const int WriteBytes = 8 * 4096;

    /// <summary>The round trip's message: the tunnel's wire size on a link hop (one 4,096-byte cell).</summary>
    public const int PingBytes = 4096;

    private readonly GrpcChannel _channel;
    private readonly Chain.ChainClient _client;
    private readonly Func<int, Uri> _hop;
    private readonly byte[] _payload;
    private readonly Chunk _chunk;
    private readonly Chunk _ping;

    public ChainPath(Func<int, Uri> hop)
    {
        _hop = hop;
        _channel = ApplicationChannel.Create(hop(0));
        _client = new Chain.ChainClient(_channel);
        _payload = RandomNumberGenerator.GetBytes(WriteBytes);
        _chunk = new Chunk { Data = UnsafeByteOperations.UnsafeWrap(_payload) };
        _ping = new Chunk { Data = ByteString.CopyFrom(RandomNumberGenerator.GetBytes(PingBytes)) };
    }

    public string Name => "plain chain";

    public async Task<double> SendAsync(int[] route, long bytes, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        using var call = Open(route, sink: true, cancellationToken);
        for (var sent = 0L; sent < bytes;)
        {
            var count = (int)Math.Min(WriteBytes, bytes - sent);
            sent += count;
            await call.RequestStream.WriteAsync(count == WriteBytes ? _chunk : new Chunk { Data = UnsafeByteOperations.UnsafeWrap(_payload.AsMemory(0, count)) }, cancellationToken);
        }

        await call.RequestStream.CompleteAsync();
        if (!await call.ResponseStream.MoveNext(cancellationToken))
        {
            throw new InvalidOperationException("the plain chain ended without confirming");
        }

        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        while (await call.ResponseStream.MoveNext(cancellationToken))
        {
        }

        return seconds;
    }

    public Task<IRoundTrips> OpenAsync(int[] route, CancellationToken cancellationToken) =>
        Task.FromResult<IRoundTrips>(new OpenCall(Open(route, sink: false, cancellationToken), _ping));

    public Task<double> FirstReplyAsync(int[] route, CancellationToken cancellationToken) =>
        Workloads.ChainFirstReplyAsync(() => Open(route, sink: false, cancellationToken), _ping, cancellationToken);

    public void Dispose() => _channel.Dispose();

    private AsyncDuplexStreamingCall<Chunk, Chunk> Open(int[] route, bool sink, CancellationToken cancellationToken) =>
        _client.Pipe(ChainService.RouteHeaders(route.Select(_hop), sink), cancellationToken: cancellationToken);

    private sealed class OpenCall(AsyncDuplexStreamingCall<Chunk, Chunk> call, Chunk ping) : IRoundTrips
    {
        public async Task<double> RoundTripAsync(CancellationToken cancellationToken)
        {
            var started = Stopwatch.GetTimestamp();
            await call.RequestStream.WriteAsync(ping, cancellationToken);
            if (!await call.ResponseStream.MoveNext(cancellationToken))
            {
                throw new InvalidOperationException("the plain chain ended during a round trip");
            }

            return Measure.Milliseconds(started);
        }

        public async ValueTask DisposeAsync()
        {
            using (call)
            {
                using var deadline = new CancellationTokenSource(ControlPath.CloseTimeout);
                await call.RequestStream.CompleteAsync();
                while (await call.ResponseStream.MoveNext(deadline.Token))
                {
                }
            }
        }
    }
}
