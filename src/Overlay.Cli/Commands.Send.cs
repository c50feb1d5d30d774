using System.CommandLine;
using System.Globalization;
using Google.Protobuf.WellKnownTypes;
using Overlay.Client;

namespace Overlay.Cli;

/// <summary>`overlay send`: standard input through a tunnel, the reply to standard output.</summary>
internal sealed partial class Commands
{
    private const int CopyBufferBytes = 64 * 1024;

    public Task<int> SendAsync(ParseResult parse, CancellationToken token) => RunAsync(parse, async client =>
    {
        var target = new OverlayTarget
        {
            Destination = parse.GetValue(o.To),
            Relays = (int)parse.GetValue(o.Relays),
            Service = parse.GetValue(o.Service),
            Deadline = parse.GetValue(o.Deadline) is > 0 and var seconds ? TimeSpan.FromSeconds(seconds) : null,
        };
        if (parse.GetValue(o.ReplyViaOtherRoute))
        {
            return await SendWithReplyAsync(client, parse, target, token);
        }

        using var progress = Progress.Start(io, parse.GetValue(o.Json));
        if (parse.GetValue(o.OneWay))
        {
            var result = await client.SendAsync(target, new CountingStream(io.Input, progress.Sent), token);
            if (!Print(parse, result))
            {
                io.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"sent {result.BytesSent} bytes one way through {result.Route.Count - 1} relays to {Short(result.Route[^1])} in {result.Elapsed.ToTimeSpan().TotalMilliseconds:F1} ms"));
            }

            return ExitCodes.Ok;
        }

        await using var tunnel = await client.OpenTunnelAsync(target, token);
        using var stopWriting = CancellationTokenSource.CreateLinkedTokenSource(token);
        var writing = WriteRequestAsync(tunnel, progress, stopWriting.Token);

        using var reply = parse.GetValue(o.Json) ? new MemoryStream() : null;
        var sink = reply ?? io.Output;
        var buffer = new byte[CopyBufferBytes];
        int read;
        while ((read = await tunnel.ReadAsync(buffer, token)) > 0)
        {
            await sink.WriteAsync(buffer.AsMemory(0, read), token);
            progress.Received(read);
        }

        await sink.FlushAsync(token);
        if (writing.IsCompleted)
        {
            await writing;
        }
        else
        {
            // The reply has ended, so the tunnel is over: standard input may stay open (a terminal)
            // and must not hold the command. Its read is abandoned, its outcome no longer matters.
            await stopWriting.CancelAsync();
            _ = writing.ContinueWith(static t => t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        }

        if (reply is not null)
        {
            io.Out.WriteLine(Formatter.Format(new Struct
            {
                Fields =
                {
                    ["tunnelId"] = Value.ForString(tunnel.TunnelId),
                    ["route"] = Value.ForList([.. tunnel.Route.Select(Value.ForString)]),
                    ["bytesReceived"] = Value.ForNumber(tunnel.BytesRead),
                    ["reply"] = Value.ForString(Convert.ToBase64String(reply.GetBuffer(), 0, (int)reply.Length)),
                },
            }));
        }

        return ExitCodes.Ok;
    }, token);

    private async Task WriteRequestAsync(TunnelStream tunnel, Progress progress, CancellationToken token)
    {
        var buffer = new byte[CopyBufferBytes];
        int read;
        while ((read = await io.Input.ReadAsync(buffer, token)) > 0)
        {
            await tunnel.WriteAsync(buffer.AsMemory(0, read), token);
            progress.Sent(read);
        }

        await tunnel.CompleteWritingAsync(token);
    }
}
