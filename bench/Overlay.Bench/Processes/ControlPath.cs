using System.Diagnostics;
using System.Security.Cryptography;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Overlay.Bench.Network;
using Overlay.Protocol.Control.V1;

namespace Overlay.Bench.Processes;

/// <summary>
/// The overlay as an application uses it: tunnels opened through node 0's control API (bearer
/// token from its data directory), explicit routes, the destination's default echo.
/// </summary>
internal sealed class ControlPath : IPathUnderTest, IDisposable
{
    /// <summary>Bytes per data message: one link message of full cells at the node's defaults (8 × 4,077), as the one-process harness writes.</summary>
    public const int WriteBytes = 8 * 4077;

    /// <summary>The round trip's request: one cell on the wire.</summary>
    public const int PingBytes = 64;

    private static readonly TimeSpan TunnelDeadline = TimeSpan.FromMinutes(15);

    /// <summary>How long closing a path may take before the harness gives up on it.</summary>
    public static readonly TimeSpan CloseTimeout = TimeSpan.FromSeconds(30);

    private readonly GrpcChannel _channel;
    private readonly Control.ControlClient _client;
    private readonly Metadata _headers;
    private readonly Func<int, string> _nodeId;
    private readonly byte[] _payload;
    private readonly ByteString _chunk;
    private readonly ByteString _ping;

    public ControlPath(Uri controlEndpoint, string token, Func<int, string> nodeId)
    {
        _channel = ApplicationChannel.Create(controlEndpoint);
        _client = new Control.ControlClient(_channel);
        _headers = new Metadata { { "authorization", "Bearer " + token } };
        _nodeId = nodeId;
        _payload = RandomNumberGenerator.GetBytes(WriteBytes);
        _chunk = UnsafeByteOperations.UnsafeWrap(_payload);
        _ping = ByteString.CopyFrom(RandomNumberGenerator.GetBytes(PingBytes));
    }

    public string Name => "tunnel";

    public Control.ControlClient Client => _client;

    public Metadata Headers => _headers;

    public async Task<double> SendAsync(int[] route, long bytes, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        using var call = _client.Send(_headers, cancellationToken: cancellationToken);
        await call.RequestStream.WriteAsync(new SendRequest { Target = Target(route) }, cancellationToken);
        for (var sent = 0L; sent < bytes;)
        {
            var count = (int)Math.Min(WriteBytes, bytes - sent);
            sent += count;
            await call.RequestStream.WriteAsync(new SendRequest { Data = count == WriteBytes ? _chunk : UnsafeByteOperations.UnsafeWrap(_payload.AsMemory(0, count)) }, cancellationToken);
        }

        await call.RequestStream.CompleteAsync();
        var response = await call;
        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        return (long)response.BytesSent == bytes ? seconds : throw new InvalidOperationException($"the destination confirmed {response.BytesSent} of {bytes} bytes");
    }

    public async Task<IRoundTrips> OpenAsync(int[] route, CancellationToken cancellationToken)
    {
        var call = _client.OpenTunnel(_headers, cancellationToken: cancellationToken);
        try
        {
            await call.RequestStream.WriteAsync(new OpenTunnelRequest { Open = Target(route) }, cancellationToken);
            if (!await call.ResponseStream.MoveNext(cancellationToken) || call.ResponseStream.Current.Opened is null)
            {
                throw new InvalidOperationException("the control API did not answer `opened`");
            }

            return new OpenTunnel(call, _ping);
        }
        catch
        {
            call.Dispose();
            throw;
        }
    }

    public Task<double> FirstReplyAsync(int[] route, CancellationToken cancellationToken) => FirstReplyAsync(route, reuse: false, cancellationToken);

    /// <summary>As <see cref="FirstReplyAsync(int[], CancellationToken)"/>, but a new stream on the route node 0 keeps for <paramref name="route"/> (built by the first).</summary>
    public Task<double> StreamFirstReplyAsync(int[] route, CancellationToken cancellationToken) => FirstReplyAsync(route, reuse: true, cancellationToken);

    private async Task<double> FirstReplyAsync(int[] route, bool reuse, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        using var call = _client.OpenTunnel(_headers, cancellationToken: cancellationToken);
        var target = Target(route);
        target.Reuse = reuse;
        await call.RequestStream.WriteAsync(new OpenTunnelRequest { Open = target, Data = _ping, End = true }, cancellationToken);
        await call.RequestStream.CompleteAsync();
        var elapsed = double.NaN;
        while (await call.ResponseStream.MoveNext(cancellationToken))
        {
            if (double.IsNaN(elapsed) && !call.ResponseStream.Current.Data.IsEmpty)
            {
                elapsed = Measure.Milliseconds(started);
            }
        }

        return double.IsNaN(elapsed) ? throw new InvalidOperationException("a fresh tunnel ended without a reply") : elapsed;
    }

    public void Dispose() => _channel.Dispose();

    private TunnelTarget Target(int[] route)
    {
        var target = new TunnelTarget { Deadline = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TunnelDeadline) };
        target.Route.AddRange(route.Select(_nodeId));
        return target;
    }

    private sealed class OpenTunnel(AsyncDuplexStreamingCall<OpenTunnelRequest, OpenTunnelResponse> call, ByteString ping) : IRoundTrips
    {
        private readonly OpenTunnelRequest _request = new() { Data = ping };

        public async Task<double> RoundTripAsync(CancellationToken cancellationToken)
        {
            var started = Stopwatch.GetTimestamp();
            await call.RequestStream.WriteAsync(_request, cancellationToken);
            for (var received = 0; received < ping.Length;)
            {
                if (!await call.ResponseStream.MoveNext(cancellationToken) || call.ResponseStream.Current.End)
                {
                    throw new InvalidOperationException("the tunnel ended during a round trip");
                }

                received += call.ResponseStream.Current.Data.Length;
            }

            return Measure.Milliseconds(started);
        }

        public async ValueTask DisposeAsync()
        {
            using (call)
            {
                using var deadline = new CancellationTokenSource(CloseTimeout);
                await call.RequestStream.WriteAsync(new OpenTunnelRequest { End = true }, deadline.Token);
                await call.RequestStream.CompleteAsync();
                while (await call.ResponseStream.MoveNext(deadline.Token))
                {
                }
            }
        }
    }
}
