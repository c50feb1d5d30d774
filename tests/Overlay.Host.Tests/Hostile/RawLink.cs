using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using Overlay.Host.Tests.Infrastructure;

namespace Overlay.Host.Tests.Hostile;

/// <summary>
/// Link messages built by hand, as a hostile peer would: protobuf fields written byte by byte
/// (field 1 header, field 2 cells, both length-delimited), no generated code.
/// </summary>
internal static class RawProtobuf
{
    public static byte[] LinkMessage(ReadOnlySpan<byte> header, ReadOnlySpan<byte> cells)
    {
        using var buffer = new MemoryStream();
        if (!header.IsEmpty)
        {
            WriteField(buffer, 1, header);
        }

        if (!cells.IsEmpty)
        {
            WriteField(buffer, 2, cells);
        }

        return buffer.ToArray();
    }

    public static void WriteField(Stream output, int field, ReadOnlySpan<byte> value)
    {
        WriteVarint(output, (ulong)((field << 3) | 2));
        WriteVarint(output, (ulong)value.Length);
        output.Write(value);
    }

    public static byte[] Field(int field, ReadOnlySpan<byte> value)
    {
        using var buffer = new MemoryStream();
        WriteField(buffer, field, value);
        return buffer.ToArray();
    }

    private static void WriteVarint(Stream output, ulong value)
    {
        while (value >= 0x80)
        {
            output.WriteByte((byte)(value | 0x80));
            value >>= 7;
        }

        output.WriteByte((byte)value);
    }
}

/// <summary>How a raw call ended: the gRPC status, its message and the <c>overlay-error</c> trailer, read by hand.</summary>
internal sealed record RawOutcome(int Status, string? Message, int? OverlayError, IReadOnlyList<byte[]> Messages)
{
    public override string ToString() => $"grpc-status {Status} ({Message}), overlay-error {OverlayError?.ToString(CultureInfo.InvariantCulture) ?? "none"}, {Messages.Count} messages";
}

/// <summary>
/// A plain HttpClient speaking gRPC over h2c to a node's link endpoint, sharing none of the node's
/// parsing code: frames are 1 flag byte and a 4-byte big-endian length, status and trailers are read
/// from the response as they come. Optionally bound to a local address (another loopback address is
/// another fairness key).
/// </summary>
internal sealed class RawLinkClient : IDisposable
{
    public const string Relay = "/overlay.v1.Link/Relay";
    public const string Exchange = "/overlay.v1.Link/Exchange";
    public const string Prove = "/overlay.v1.Link/Prove";

    private readonly HttpClient _http;
    private readonly Uri _endpoint;

    public RawLinkClient(Uri endpoint, IPAddress? localAddress = null)
    {
        _endpoint = endpoint;
        var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            EnableMultipleHttp2Connections = true,
            ActivityHeadersPropagator = null,
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(5),
        };
        TestLinkTls.Handler(endpoint, handler);
        if (localAddress is not null)
        {
            handler.ConnectCallback = async (context, cancellationToken) =>
            {
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    socket.Bind(new IPEndPoint(localAddress, 0));
                    await socket.ConnectAsync(context.DnsEndPoint, cancellationToken);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            };
        }

        _http = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
    }

    /// <summary>Opens a call; nothing is sent until the caller writes.</summary>
    public async Task<RawCall> OpenAsync(string path, CancellationToken cancellationToken)
    {
        var content = new PushContent();
        var request = new HttpRequestMessage(HttpMethod.Post, new Uri(_endpoint, path))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = content,
        };
        request.Headers.TryAddWithoutValidation("te", "trailers");
        content.Headers.ContentType = new MediaTypeHeaderValue("application/grpc");
        var call = new RawCall(content, cancellationToken);
        var sending = _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, call.Token);
        call.Start(sending);
        // The body opens once the request headers are out; a refused connection ends the send first.
        await Task.WhenAny(content.Opened, sending).WaitAsync(cancellationToken);
        return call;
    }

    /// <summary>One whole call: the messages as one request (each framed), then the outcome.</summary>
    public async Task<RawOutcome> CallAsync(string path, IEnumerable<byte[]> messages, CancellationToken cancellationToken)
    {
        using var call = await OpenAsync(path, cancellationToken);
        foreach (var message in messages)
        {
            if (!await call.TryWriteAsync(RawCall.Frame(message)))
            {
                break; // the node already ended the call: its outcome says why
            }
        }

        call.CompleteRequest();
        return await call.OutcomeAsync();
    }

    public void Dispose() => _http.Dispose();
}

/// <summary>One raw call: writes go out as the caller makes them; the outcome is read from the response.</summary>
internal sealed class RawCall : IDisposable
{
    private readonly PushContent _content;
    private readonly CancellationTokenSource _cancel;
    private Task<RawOutcome>? _outcome;

    internal RawCall(PushContent content, CancellationToken cancellationToken)
    {
        _content = content;
        _cancel = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
    }

    internal CancellationToken Token => _cancel.Token;

    internal void Start(Task<HttpResponseMessage> response) => _outcome = ReadAsync(response);

    public Task WriteMessageAsync(byte[] message) => WriteAsync(Frame(message));

    public async Task WriteAsync(ReadOnlyMemory<byte> bytes)
    {
        await Task.WhenAny(_content.Opened, _outcome!).WaitAsync(_cancel.Token);
        if (!_content.Opened.IsCompleted)
        {
            throw new IOException("the call ended before its request body opened");
        }

        var stream = await _content.Opened;
        await stream.WriteAsync(bytes, _cancel.Token);
        await stream.FlushAsync(_cancel.Token);
    }

    /// <summary>
    /// Writes, or returns false when the node has already ended the call (a reset surfaces in the
    /// write as one of several exceptions, depending on timing); the outcome then says why.
    /// </summary>
    public async Task<bool> TryWriteAsync(ReadOnlyMemory<byte> bytes)
    {
        try
        {
            await WriteAsync(bytes);
            return true;
        }
        catch (Exception exception) when (exception is IOException or ObjectDisposedException or HttpRequestException
            || (exception is OperationCanceledException && !_cancel.IsCancellationRequested))
        {
            return false;
        }
    }

    public void CompleteRequest() => _content.Complete();

    /// <summary>Ends the call from this side at once (an RST_STREAM), as a peer that gives up.</summary>
    public void Abort() => _cancel.Cancel();

    /// <summary>The call's status and trailers; the body is read to its end first.</summary>
    public Task<RawOutcome> OutcomeAsync() => _outcome!;

    public static byte[] Frame(ReadOnlySpan<byte> message)
    {
        var framed = new byte[5 + message.Length];
        BinaryPrimitives.WriteInt32BigEndian(framed.AsSpan(1), message.Length);
        message.CopyTo(framed.AsSpan(5));
        return framed;
    }

    public void Dispose()
    {
        _cancel.Cancel();
        _content.Complete();
        _cancel.Dispose();
    }

    private async Task<RawOutcome> ReadAsync(Task<HttpResponseMessage> sending)
    {
        using var response = await sending;
        var messages = new List<byte[]>();
        await using (var body = await response.Content.ReadAsStreamAsync(_cancel.Token))
        {
            var prefix = new byte[5];
            while (await ReadFullyAsync(body, prefix))
            {
                var message = new byte[BinaryPrimitives.ReadInt32BigEndian(prefix.AsSpan(1))];
                if (!await ReadFullyAsync(body, message) && message.Length != 0)
                {
                    throw new IOException("the response ended inside a message");
                }

                messages.Add(message);
            }
        }

        // A trailers-only response carries the status in its headers.
        var status = Header(response, "grpc-status") ?? throw new IOException($"no grpc-status (HTTP {(int)response.StatusCode})");
        var error = Header(response, "overlay-error");
        return new RawOutcome(int.Parse(status, CultureInfo.InvariantCulture), Header(response, "grpc-message"),
            error is null ? null : int.Parse(error, CultureInfo.InvariantCulture), messages);
    }

    private async Task<bool> ReadFullyAsync(Stream stream, byte[] buffer)
    {
        var read = 0;
        while (read < buffer.Length)
        {
            var n = await stream.ReadAsync(buffer.AsMemory(read), _cancel.Token);
            if (n == 0)
            {
                return false;
            }

            read += n;
        }

        return true;
    }

    private static string? Header(HttpResponseMessage response, string name) =>
        response.TrailingHeaders.TryGetValues(name, out var trailer) ? trailer.First()
        : response.Headers.TryGetValues(name, out var header) ? header.First()
        : null;
}

/// <summary>A request body the caller writes into while the call runs (HTTP/2 duplex).</summary>
internal sealed class PushContent : HttpContent
{
    private readonly TaskCompletionSource<Stream> _opened = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _completed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task<Stream> Opened => _opened.Task;

    public void Complete() => _completed.TrySetResult();

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
    {
        _opened.TrySetResult(stream);
        await _completed.Task;
    }

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        _opened.TrySetResult(stream);
        await _completed.Task.WaitAsync(cancellationToken);
    }

    protected override bool TryComputeLength(out long length)
    {
        length = 0;
        return false;
    }
}
