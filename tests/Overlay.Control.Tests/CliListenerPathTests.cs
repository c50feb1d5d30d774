using System.Diagnostics;
using System.Globalization;
using Google.Protobuf;
using Overlay.Cli;
using V1 = Overlay.Protocol.Control.V1;

namespace Overlay.Control.Tests;

/// <summary>What a review of `overlay listen` and `overlay send` found, each as the test that caught it.</summary>
public sealed partial class CliTests
{
    private async Task WaitForListenersAsync(int node, uint count, Task running, CancellationToken token)
    {
        using var stats = Overlay.Client(node);
        await ListenTests.WaitAsync(async () => (await stats.Api.GetInfoAsync(new V1.GetInfoRequest(), cancellationToken: token)).Listeners == count || running.IsCompleted, token);
        Assert.False(running.IsCompleted, "listen ended before it registered");
    }

    [Fact]
    public async Task Listen_serves_tunnels_side_by_side_and_streams_each_reply()
    {
        using var deadline = TestTimeouts.After(30);
        var listening = RunAsync(1, "listen --count 2", token: deadline.Token);
        await WaitForListenersAsync(1, 1, listening, deadline.Token);

        // A tunnel whose request has not ended...
        using var origin = Overlay.Client(0);
        using var open = origin.Api.OpenTunnel(cancellationToken: deadline.Token);
        await open.RequestStream.WriteAsync(new V1.OpenTunnelRequest { Open = new V1.TunnelTarget { Destination = B, Relays = 1 }, Data = ByteString.CopyFromUtf8("first half ") });
        Assert.True(await open.ResponseStream.MoveNext(deadline.Token));
        Assert.NotNull(open.ResponseStream.Current.Opened);

        // ...does not hold up another one,
        Assert.Equal("whole"u8.ToArray(), await TunnelTests.SendAndReadAsync(origin, B, "whole"u8.ToArray(), deadline.Token));

        // and its echo streams back before its request ends.
        Assert.True(await open.ResponseStream.MoveNext(deadline.Token));
        Assert.Equal("first half ", open.ResponseStream.Current.Data.ToStringUtf8());
        await open.RequestStream.WriteAsync(new V1.OpenTunnelRequest { Data = ByteString.CopyFromUtf8("second half"), End = true });
        await open.RequestStream.CompleteAsync();
        Assert.Equal("second half"u8.ToArray(), await TunnelTests.ReadReplyAsync(open.ResponseStream, deadline.Token));

        var listen = await listening;
        Assert.True(listen.ExitCode == 0, listen.Error);
    }

    [Fact]
    public async Task Listen_exec_kills_its_command_when_cancelled()
    {
        if (OperatingSystem.IsWindows())
        {
            return; // the command below is a POSIX shell's
        }

        using var deadline = TestTimeouts.After(30);
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token);
        var pidFile = Path.Combine(Path.GetTempPath(), $"overlay-exec-{Guid.NewGuid():N}.pid");
        try
        {
            var listening = RunAsync(1, "listen --count 1", token: cancel.Token, extra: ["--exec", $"echo $$ > {pidFile}; exec sleep 600"]);
            await WaitForListenersAsync(1, 1, listening, deadline.Token);
            using var origin = Overlay.Client(0);
            using var sending = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token);
            var send = Task.Run(() => TunnelTests.SendAndReadAsync(origin, B, "x"u8.ToArray(), sending.Token), sending.Token);

            var pid = 0;
            await ListenTests.WaitAsync(() => Task.FromResult(File.Exists(pidFile) && int.TryParse(File.ReadAllText(pidFile).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out pid)), deadline.Token);
            using var child = Process.GetProcessById(pid);
            await cancel.CancelAsync();
            Assert.Equal(ExitCodes.Cancelled, (await listening).ExitCode);
            await child.WaitForExitAsync(deadline.Token);

            await sending.CancelAsync();
            await Assert.ThrowsAnyAsync<Exception>(() => send);
        }
        finally
        {
            File.Delete(pidFile);
        }
    }

    [Fact]
    public async Task Send_ends_with_the_reply_while_stdin_stays_open()
    {
        using var deadline = TestTimeouts.After(30);
        using var listener = Overlay.Client(1);
        using var listen = listener.Api.Listen(new V1.ListenRequest(), cancellationToken: deadline.Token);
        await listen.ResponseHeadersAsync;
        var answering = Task.Run(async () =>
        {
            Assert.True(await listen.ResponseStream.MoveNext(deadline.Token));
            using var accept = listener.Api.Accept(cancellationToken: deadline.Token);
            await accept.RequestStream.WriteAsync(new V1.AcceptRequest { TunnelId = listen.ResponseStream.Current.Offer.TunnelId, Data = ByteString.CopyFromUtf8("done"), End = true });
            await accept.RequestStream.CompleteAsync();
            try
            {
                while (await accept.ResponseStream.MoveNext(deadline.Token))
                {
                }
            }
            catch (Grpc.Core.RpcException)
            {
                // The origin went away mid-request: its request never ended, as expected here.
            }
        });

        using var stdin = new OpenInput("hello"u8.ToArray());
        var run = await RunAsync(0, $"send --to {B} --relays 1", stdin, token: deadline.Token);
        Assert.True(run.ExitCode == 0, $"exit {run.ExitCode}: {run.Error}");
        Assert.Equal("done", run.Output);
        await answering;
    }

    private string B => Overlay.Nodes[1].Id.ToString();

    /// <summary>Standard input that gives some bytes and then stays open, as a terminal does.</summary>
    private sealed class OpenInput(byte[] first) : Stream
    {
        private bool _given;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (!_given)
            {
                _given = true;
                first.CopyTo(buffer);
                return first.Length;
            }

            await Task.Delay(Timeout.InfiniteTimeSpan, cancellationToken);
            return 0;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("async only");

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
