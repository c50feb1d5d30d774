using System.CommandLine;
using System.Diagnostics;
using System.Text;
using Google.Protobuf.WellKnownTypes;
using Overlay.Client;
using Overlay.Protocol.Control.V1;

namespace Overlay.Cli;

/// <summary>
/// `overlay listen`: serves the tunnels that end at the node side by side, streaming each: the echo
/// (or the command's output) goes back as the request arrives, and a slow tunnel holds up only itself.
/// </summary>
internal sealed partial class Commands
{
    private const int MaxServedAtOnce = 64;
    private const int PrintedBytes = 64 * 1024;
    private readonly Lock _printing = new();

    public Task<int> ListenAsync(ParseResult parse, CancellationToken token) => RunAsync(parse, async client =>
    {
        var limit = parse.GetValue(o.Count);
        var command = parse.GetValue(o.Exec);
        var json = parse.GetValue(o.Json);
        var service = parse.GetValue(o.Service);
        using var listener = await client.ListenAsync(service, token);
        await io.Error.WriteLineAsync($"listening on {parse.GetValue(o.Node)} for tunnels ending at this node{(service is null ? "" : $" for service '{service}'")}{(limit > 0 ? $" ({limit})" : "")}; replying with {(command is null ? "an echo" : $"the output of `{command}`")}");

        using var slots = new SemaphoreSlim(MaxServedAtOnce);
        var failed = 0;
        var accepted = 0u;
        await using (var tunnels = listener.GetAsyncEnumerator(token))
        {
            while (limit == 0 || accepted < limit)
            {
                await slots.WaitAsync(token);
                if (!await tunnels.MoveNextAsync())
                {
                    slots.Release();
                    break;
                }

                accepted++;
                _ = ServeAsync(client, tunnels.Current, command, json, token).ContinueWith(served =>
                {
                    if (!served.IsCompletedSuccessfully || !served.Result)
                    {
                        Interlocked.Increment(ref failed);
                    }

                    slots.Release();
                }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }
        }

        // Every slot back: every tunnel served.
        for (var i = 0; i < MaxServedAtOnce; i++)
        {
            await slots.WaitAsync(token);
        }

        // A tunnel cut short by the cancel may have counted as failed before the cancel reached this wait:
        // a cancelled listen exits as cancelled whatever finished first.
        token.ThrowIfCancellationRequested();
        return failed == 0 ? ExitCodes.Ok : ExitCodes.Failed;
    }, token);

    /// <summary>Serves one tunnel; false (with the reason on standard error) when it failed.</summary>
    private async Task<bool> ServeAsync(OverlayClient client, TunnelStream tunnel, string? command, bool json, CancellationToken token)
    {
        await using (tunnel)
        {
            try
            {
                if (!tunnel.ReplyBlock.IsEmpty)
                {
                    await ReplyOverBlockAsync(client, tunnel, command, json, token);
                    return true;
                }

                if (command is not null && tunnel.Mode == TunnelMode.Duplex)
                {
                    await ExecAsync(tunnel, command, json, token);
                }
                else
                {
                    await EchoAsync(tunnel, json, token);
                }

                await tunnel.CompleteWritingAsync(token);
                return true;
            }
            catch (Exception exception) when (exception is not OperationCanceledException)
            {
                await io.Error.WriteLineAsync($"overlay: tunnel {tunnel.TunnelId}: {exception.Message}");
                return false;
            }
        }
    }

    // Each read goes straight back (one-way tunnels have no reply).
    private async Task EchoAsync(TunnelStream tunnel, bool json, CancellationToken token)
    {
        var duplex = tunnel.Mode == TunnelMode.Duplex;
        using var printed = new MemoryStream();
        var buffer = new byte[CopyBufferBytes];
        int read;
        while ((read = await tunnel.ReadAsync(buffer, token)) > 0)
        {
            Keep(printed, buffer.AsSpan(0, read));
            if (duplex)
            {
                await tunnel.WriteAsync(buffer.AsMemory(0, read), token);
            }
        }

        PrintMessage(tunnel, printed, json);
    }

    // The request streams into the command's standard input as it arrives, its output back as the reply.
    private async Task ExecAsync(TunnelStream tunnel, string command, bool json, CancellationToken token)
    {
        using var process = StartCommand(command);
        using var killOnCancel = token.Register(() => Kill(process));
        try
        {
            var replying = ReplyWithOutputAsync(process, tunnel, token);
            using var printed = new MemoryStream();
            var input = process.StandardInput.BaseStream;
            var buffer = new byte[CopyBufferBytes];
            var feeding = true;
            int read;
            while ((read = await tunnel.ReadAsync(buffer, token)) > 0)
            {
                Keep(printed, buffer.AsSpan(0, read));
                feeding = feeding && await FeedAsync(input, buffer.AsMemory(0, read), command, token);
            }

            if (feeding)
            {
                await CloseInputAsync(input, command);
            }

            PrintMessage(tunnel, printed, json);
            await replying;
            await process.WaitForExitAsync(token);
            if (process.ExitCode != 0)
            {
                await io.Error.WriteLineAsync($"overlay: `{command}` exited with {process.ExitCode}; its output is the reply anyway");
            }
        }
        finally
        {
            Kill(process); // no command outlives its tunnel
        }
    }

    // The command through the shell, its standard input and output redirected.
    private static Process StartCommand(string command)
    {
        var start = OperatingSystem.IsWindows()
            ? new ProcessStartInfo("cmd.exe", ["/c", command])
            : new ProcessStartInfo("/bin/sh", ["-c", command]);
        start.RedirectStandardInput = true;
        start.RedirectStandardOutput = true;
        start.UseShellExecute = false;
        return Process.Start(start) ?? throw new CliException(ExitCodes.Failed, $"cannot start `{command}`");
    }

    private static async Task ReplyWithOutputAsync(Process process, TunnelStream tunnel, CancellationToken token)
    {
        var output = process.StandardOutput.BaseStream;
        var buffer = new byte[CopyBufferBytes];
        int read;
        while ((read = await output.ReadAsync(buffer, token)) > 0)
        {
            await tunnel.WriteAsync(buffer.AsMemory(0, read), token);
        }
    }

    // False once the command has closed its input (a broken pipe): what it writes is still the reply.
    private async Task<bool> FeedAsync(Stream input, ReadOnlyMemory<byte> data, string command, CancellationToken token)
    {
        try
        {
            await input.WriteAsync(data, token);
            await input.FlushAsync(token);
            return true;
        }
        catch (IOException exception)
        {
            await io.Error.WriteLineAsync($"overlay: `{command}` did not read all of its input: {exception.Message}");
            return false;
        }
    }

    private async Task CloseInputAsync(Stream input, string command)
    {
        try
        {
            await input.DisposeAsync();
        }
        catch (IOException exception)
        {
            await io.Error.WriteLineAsync($"overlay: `{command}` closed its input early: {exception.Message}");
        }
    }

    // Kill is a no-op for a process that already exited, so a child that ends on its own races nothing here.
    private static void Kill(Process process) => process.Kill(entireProcessTree: true);

    private static void Keep(MemoryStream printed, ReadOnlySpan<byte> data)
    {
        var room = PrintedBytes - (int)printed.Length;
        if (room > 0)
        {
            printed.Write(data[..Math.Min(room, data.Length)]);
        }
    }

    private void PrintMessage(TunnelStream tunnel, MemoryStream printed, bool json)
    {
        var data = printed.GetBuffer().AsSpan(0, (int)printed.Length);
        var total = tunnel.BytesRead;
        string? text;
        try
        {
            text = StrictUtf8.GetString(data);
            text = text.Any(c => char.IsControl(c) && c is not ('\n' or '\r' or '\t')) ? null : text;
        }
        catch (DecoderFallbackException)
        {
            text = null;
        }

        lock (_printing)
        {
            if (json)
            {
                var fields = new Struct
                {
                    Fields =
                    {
                        ["tunnelId"] = Value.ForString(tunnel.TunnelId),
                        ["mode"] = Value.ForString(Mode(tunnel.Mode)),
                        ["bytes"] = Value.ForNumber(total),
                        ["data"] = Value.ForString(Convert.ToBase64String(data)),
                    },
                };
                if (text is not null)
                {
                    fields.Fields["text"] = Value.ForString(text);
                }

                if (total > data.Length)
                {
                    fields.Fields["truncated"] = Value.ForBool(true);
                }

                io.Out.WriteLine(Formatter.Format(fields));
                return;
            }

            var more = total > data.Length ? $" (the first {data.Length} shown)" : "";
            io.Out.WriteLine($"tunnel {tunnel.TunnelId} ({Mode(tunnel.Mode)}), {total} bytes{more}:");
            io.Out.WriteLine(text ?? $"(binary: {Convert.ToHexStringLower(data[..Math.Min(32, data.Length)])}{(data.Length > 32 ? "..." : "")})");
        }
    }
}
