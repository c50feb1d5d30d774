using System.CommandLine;
using System.Globalization;
using Google.Protobuf.WellKnownTypes;
using Overlay.Client;

namespace Overlay.Cli;

/// <summary>
/// Replies over another route: `overlay send --reply-via-other-route`, and `overlay listen` answering a
/// message that carries a reply block over that block.
/// </summary>
internal sealed partial class Commands
{
    // A message answered over a reply block is read whole first (its reply goes out in one piece).
    private const int MaxAnsweredMessageBytes = 16 << 20;

    // A reply is at most the node's Overlay:Replies:MaxReplyBytes; this only stops a runaway command.
    private const int MaxCommandReplyBytes = 16 << 20;

    private async Task<int> SendWithReplyAsync(OverlayClient client, ParseResult parse, OverlayTarget target, CancellationToken token)
    {
        using var message = new MemoryStream();
        await io.Input.CopyToAsync(message, token);
        var wait = parse.GetValue(o.ReplyWait) is > 0 and var seconds ? TimeSpan.FromSeconds(seconds) : (TimeSpan?)null;
        var result = await client.SendWithReplyAsync(target, message.GetBuffer().AsMemory(0, (int)message.Length), (int)parse.GetValue(o.ReplyRelays), wait, token);
        if (!Print(parse, result))
        {
            await io.Output.WriteAsync(result.Reply.Memory, token);
            await io.Output.FlushAsync(token);
            await io.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"sent {result.BytesSent} bytes one way through {result.Route.Count - 1} relays to {Short(result.Route[^1])}; its reply ({result.Reply.Length} bytes) came back through {result.ReplyRoute.Count - 1} other relays"));
        }

        return ExitCodes.Ok;
    }

    // The message whole, printed; then the end of the tunnel (the sender sees it delivered), then the reply
    // (its echo, or the command's output) over the block.
    private async Task ReplyOverBlockAsync(OverlayClient client, TunnelStream tunnel, string? command, bool json, CancellationToken token)
    {
        using var message = new MemoryStream();
        using var printed = new MemoryStream();
        var buffer = new byte[CopyBufferBytes];
        int read;
        while ((read = await tunnel.ReadAsync(buffer, token)) > 0)
        {
            if (message.Length + read > MaxAnsweredMessageBytes)
            {
                throw new CliException(ExitCodes.Failed, $"a message answered over its reply block is read whole, and this one exceeds {MaxAnsweredMessageBytes} bytes");
            }

            message.Write(buffer, 0, read);
            Keep(printed, buffer.AsSpan(0, read));
        }

        PrintMessage(tunnel, printed, json);
        await tunnel.CompleteWritingAsync(token);
        var reply = command is null ? message.ToArray() : await RunForOutputAsync(command, message.ToArray(), token);
        var sent = await client.SendReplyAsync(tunnel.ReplyBlock, reply, token);
        lock (_printing)
        {
            if (json)
            {
                io.Out.WriteLine(Formatter.Format(new Struct
                {
                    Fields = { ["tunnelId"] = Value.ForString(tunnel.TunnelId), ["repliedBytes"] = Value.ForNumber(sent.BytesSent) },
                }));
            }
            else
            {
                io.Out.WriteLine($"tunnel {tunnel.TunnelId}: replied {sent.BytesSent} bytes over its reply block");
            }
        }
    }

    // The command's whole output for `input` on its standard input, fed and read at once (neither side can then block the other).
    private async Task<byte[]> RunForOutputAsync(string command, byte[] input, CancellationToken token)
    {
        using var process = StartCommand(command);
        using var killOnCancel = token.Register(() => Kill(process));
        try
        {
            var feeding = Task.Run(async () =>
            {
                if (await FeedAsync(process.StandardInput.BaseStream, input, command, token))
                {
                    await CloseInputAsync(process.StandardInput.BaseStream, command);
                }
            }, token);
            using var output = new MemoryStream();
            var buffer = new byte[CopyBufferBytes];
            int read;
            while ((read = await process.StandardOutput.BaseStream.ReadAsync(buffer, token)) > 0)
            {
                if (output.Length + read > MaxCommandReplyBytes)
                {
                    throw new CliException(ExitCodes.Failed, $"`{command}` wrote more than {MaxCommandReplyBytes} bytes, more than any reply may hold");
                }

                output.Write(buffer, 0, read);
            }

            await feeding;
            await process.WaitForExitAsync(token);
            if (process.ExitCode != 0)
            {
                await io.Error.WriteLineAsync($"overlay: `{command}` exited with {process.ExitCode}; its output is the reply anyway");
            }

            return output.ToArray();
        }
        finally
        {
            Kill(process); // no command outlives its reply
        }
    }
}
