using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Overlay.Protocol.V1;

namespace Overlay.Bench.Fairness;

/// <summary>
/// <c>flood --target URL --epoch E --header-bytes H --streams S --source ADDR</c>: the hostile previous
/// hop of <see cref="FairnessCommand"/>, in a process of its own so that its CPU can be kept off the
/// nodes' core. Keeps S relay streams in flight from one source address, each sending one header that
/// costs the target a full X25519 agreement (the right version and epoch, a canonical point, random
/// bytes after) before its MAC fails, or, given an epoch the target does not hold, one it refuses before it; prints how many it sent every half second, and stops when its
/// standard input closes.
/// </summary>
internal static class FloodCommand
{
    public const string ProgressPrefix = "flood: sent ";

    // Every connection from the one source address: the node's fairness key.
    private static SocketsHttpHandler Handler(IPAddress source) => new()
    {
        ConnectCallback = async (context, cancellationToken) =>
        {
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                socket.Bind(new IPEndPoint(source, 0));
                await socket.ConnectAsync(context.DnsEndPoint, cancellationToken);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
    };

    public static async Task<int> RunAsync(string[] args)
    {
        Uri? target = null;
        uint epoch = 0;
        int headerBytes = 0, streams = 0;
        IPAddress? source = null;
        for (var i = 0; i + 1 < args.Length; i += 2)
        {
            var value = args[i + 1];
            var parsed = args[i] switch
            {
                "--target" => Uri.TryCreate(value, UriKind.Absolute, out target),
                "--epoch" => uint.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out epoch),
                "--header-bytes" => int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out headerBytes) && headerBytes > 37,
                "--streams" => int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out streams) && streams > 0,
                "--source" => IPAddress.TryParse(value, out source),
                _ => false,
            };
            if (!parsed)
            {
                Console.Error.WriteLine($"flood: bad argument {args[i]} {value}");
                return 2;
            }
        }

        if (target is null || source is null || headerBytes == 0 || streams == 0)
        {
            Console.Error.WriteLine("flood: --target, --epoch, --header-bytes, --streams and --source are required");
            return 2;
        }

        using var stop = new CancellationTokenSource();
        // The parent closes our standard input to stop us.
        _ = Task.Run(async () =>
        {
            await Console.In.ReadToEndAsync(stop.Token);
            await stop.CancelAsync();
        });

        // One channel per 10 streams: a single HTTP/2 connection is read by one loop on each side.
        var channels = Enumerable.Range(0, (streams + 9) / 10)
            .Select(_ => GrpcChannel.ForAddress(target, new GrpcChannelOptions { HttpHandler = Handler(source) }))
            .ToList();
        long sent = 0, processed = 0;
        var workers = Enumerable.Range(0, streams).Select(index => Task.Run(async () =>
        {
            var client = new Link.LinkClient(channels[index % channels.Count]);
            var header = new byte[headerBytes];
            while (!stop.IsCancellationRequested)
            {
                RandomNumberGenerator.Fill(header);
                header[0] = 1;
                BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(1), epoch);
                header[5 + 31] &= 0x7F; // a canonical point, so the agreement runs
                try
                {
                    using var call = client.Relay(cancellationToken: stop.Token);
                    await call.RequestStream.WriteAsync(new LinkMessage { Header = ByteString.CopyFrom(header) }, stop.Token);
                    await call.RequestStream.CompleteAsync();
                    while (await call.ResponseStream.MoveNext(stop.Token))
                    {
                    }
                }
                catch (RpcException refusal) when (!stop.IsCancellationRequested)
                {
                    // A refusal is the expected answer: Busy (11) from admission, any other once the node read the header
                    // (Tampered after the agreement, UnknownEpoch before it).
                    if (refusal.Trailers.GetValue("overlay-error") is { } error && error != "11")
                    {
                        Interlocked.Increment(ref processed);
                    }
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested)
                {
                    return;
                }
                catch (RpcException) when (stop.IsCancellationRequested)
                {
                    return;
                }

                Interlocked.Increment(ref sent);
            }
        })).ToList();

        using var progress = new PeriodicTimer(TimeSpan.FromMilliseconds(500));
        try
        {
            while (await progress.WaitForNextTickAsync(stop.Token))
            {
                Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{ProgressPrefix}{Interlocked.Read(ref sent)} processed {Interlocked.Read(ref processed)}"));
                await Console.Out.FlushAsync(stop.Token);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // Standard input closed: the parent is done with us.
        }

        await Task.WhenAll(workers);
        channels.ForEach(c => c.Dispose());
        return 0;
    }
}
