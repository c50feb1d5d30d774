using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Overlay.Cli;
using Overlay.Client;
using Xunit.Abstractions;
using V1 = Overlay.Protocol.Control.V1;

namespace Overlay.Control.Tests.Applications;

/// <summary>
/// Any TCP program through the overlay: a real ASP.NET Core app behind `overlay expose` on B,
/// reached by HttpClient through `overlay forward` or `overlay socks` on A, over three relays.
/// </summary>
[Collection(ForwardingOverlayCollection.Name)]
public sealed class ForwardingTests(ForwardingOverlay fixture, ITestOutputHelper output)
{
    private TestOverlay Overlay => fixture.Overlay;

    private string ServiceHost => OverlayHostName.Format(fixture.B, ForwardingOverlay.Service);

    [Fact]
    public async Task A_web_app_behind_expose_serves_10_MiB_through_three_relays_to_HttpClient_via_forward()
    {
        using var deadline = TestTimeouts.After(120);
        await using var expose = await ExposeAsync(deadline.Token);
        var (forward, port) = await ForwardAsync(deadline.Token);
        await using var _ = forward;
        using var http = new HttpClient(new SocketsHttpHandler { UseProxy = false });

        // Twice, on one connection (one tunnel): the first with the set-up and a cold start, the second warm.
        foreach (var attempt in new[] { "first", "second" })
        {
            var started = Stopwatch.GetTimestamp();
            var body = await http.GetByteArrayAsync($"http://127.0.0.1:{port}/big", deadline.Token);
            Report($"forward, {attempt} request", body.Length, started);
            Assert.True(TestWebApp.Big.AsSpan().SequenceEqual(body), $"{body.Length} bytes arrived, not the {TestWebApp.Big.Length} sent");
        }
        Assert.DoesNotContain("closed:", expose.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_web_app_behind_expose_serves_10_MiB_through_three_relays_to_HttpClient_via_socks()
    {
        using var deadline = TestTimeouts.After(120);
        await using var expose = await ExposeAsync(deadline.Token);
        var (socks, port) = await SocksAsync(deadline.Token);
        await using var _ = socks;
        using var http = new HttpClient(new SocketsHttpHandler { Proxy = new WebProxy($"socks5://127.0.0.1:{port}"), UseProxy = true });

        // Twice, on one connection (one tunnel): the first with the set-up and a cold start, the second warm.
        foreach (var attempt in new[] { "first", "second" })
        {
            var started = Stopwatch.GetTimestamp();
            var body = await http.GetByteArrayAsync($"http://{ServiceHost}/big", deadline.Token);
            Report($"SOCKS, {attempt} request", body.Length, started);
            Assert.True(TestWebApp.Big.AsSpan().SequenceEqual(body), $"{body.Length} bytes arrived, not the {TestWebApp.Big.Length} sent");
        }
    }

    [Fact]
    public async Task Fifty_concurrent_connections_are_fifty_tunnels_served_side_by_side()
    {
        using var deadline = TestTimeouts.After(120);
        await using var expose = await ExposeAsync(deadline.Token);
        var (forward, port) = await ForwardAsync(deadline.Token);
        await using var _ = forward;
        using var http = new HttpClient(new SocketsHttpHandler { UseProxy = false, MaxConnectionsPerServer = fixture.Web.Gate });

        // The app answers none until all fifty wait at once: fifty connections open together.
        var connections = await Task.WhenAll(Enumerable.Range(0, fixture.Web.Gate)
            .Select(_ => http.GetStringAsync($"http://127.0.0.1:{port}/gate", deadline.Token)));

        Assert.Equal(fixture.Web.Gate, connections.Distinct(StringComparer.Ordinal).Count());
    }

    [Fact]
    public async Task A_connection_quiet_for_several_idle_timeouts_still_works()
    {
        using var deadline = TestTimeouts.After(120);
        await using var expose = await ExposeAsync(deadline.Token);
        var (forward, port) = await ForwardAsync(deadline.Token);
        await using var _ = forward;
        using var http = new HttpClient(new SocketsHttpHandler
        {
            UseProxy = false,
            MaxConnectionsPerServer = 1,
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
        });
        var first = await http.GetStringAsync($"http://127.0.0.1:{port}/connection", deadline.Token);

        // One tunnel left open, quiet both ways: every forward cell a relay passes now is the
        // origin's padding, and each one follows at least a sixth of the idle timeout of silence.
        using var a = Overlay.Client(0);
        using var b = Overlay.Client(1);
        await ListenTests.WaitAsync(async () =>
            (await a.Api.ListTunnelsAsync(new V1.ListTunnelsRequest())).Tunnels.Count == 1
            && (await b.Api.ListTunnelsAsync(new V1.ListTunnelsRequest())).Tunnels.Count == 1, deadline.Token);
        using var relayed = new NodeCounter(Overlay.Nodes[2].Id, "overlay.relay.cells", "overlay.cell.direction");
        const int IdleTimeoutsQuiet = 4;
        await ListenTests.WaitAsync(() => Task.FromResult(relayed.Count("forward") >= IdleTimeoutsQuiet * 6), deadline.Token);

        var second = await http.GetStringAsync($"http://127.0.0.1:{port}/connection", deadline.Token);
        Assert.Equal(first, second); // the same TCP connection, so the same tunnel
        Assert.Single((await a.Api.ListTunnelsAsync(new V1.ListTunnelsRequest())).Tunnels);
    }

    [Fact]
    public async Task A_service_that_goes_away_mid_response_is_a_closed_connection_with_the_reason_logged()
    {
        using var deadline = TestTimeouts.After(60);
        await using var expose = await ExposeAsync(deadline.Token);
        var (forward, port) = await ForwardAsync(deadline.Token);
        await using var _ = forward;
        using var http = new HttpClient(new SocketsHttpHandler { UseProxy = false });

        var failure = await Assert.ThrowsAnyAsync<Exception>(() => http.GetByteArrayAsync($"http://127.0.0.1:{port}/cut", deadline.Token));

        Assert.False(deadline.IsCancellationRequested, "the cut connection hung until the test's deadline");
        Assert.True(failure is HttpRequestException or IOException, failure.ToString());
        await expose.WaitForErrorAsync("closed: connection ConnectionReset", deadline.Token);
        await forward.WaitForErrorAsync("closed: the tunnel failed", deadline.Token);
    }

    [Fact]
    public async Task A_service_that_ends_its_side_first_still_receives_everything_sent_after()
    {
        using var deadline = TestTimeouts.After(60);
        using var server = new TcpListener(IPAddress.Loopback, 0);
        server.Start();

        // A target that says goodbye and closes its sending side at once, then counts what still comes.
        var received = Task.Run(async () =>
        {
            using var accepted = await server.AcceptSocketAsync(deadline.Token);
            await accepted.SendAsync("bye"u8.ToArray(), SocketFlags.None, deadline.Token);
            accepted.Shutdown(SocketShutdown.Send);
            var buffer = new byte[64 * 1024];
            long total = 0;
            int read;
            while ((read = await accepted.ReceiveAsync(buffer, SocketFlags.None, deadline.Token)) > 0)
            {
                total += read;
            }

            return total;
        }, deadline.Token);

        await using var expose = await ExposeAsync(deadline.Token, $"127.0.0.1:{((IPEndPoint)server.LocalEndpoint).Port}");
        var (forward, port) = await ForwardAsync(deadline.Token);
        await using var _ = forward;
        using var client = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(IPAddress.Loopback, port, deadline.Token);
        Assert.Equal("bye"u8.ToArray(), await ReceiveExactlyAsync(client, 3, deadline.Token));
        Assert.Equal(0, await client.ReceiveAsync(new byte[1], SocketFlags.None, deadline.Token)); // its FIN came through

        await client.SendAsync(TestWebApp.Big.AsMemory(0, 1024 * 1024), SocketFlags.None, deadline.Token);
        client.Shutdown(SocketShutdown.Send);

        Assert.Equal(1024 * 1024, await received);
    }

    [Fact]
    public async Task A_target_nobody_listens_on_refuses_the_tunnel_and_both_sides_say_why()
    {
        using var deadline = TestTimeouts.After(60);
        await using var expose = await ExposeAsync(deadline.Token, $"127.0.0.1:{Ports.Unused()}");
        var (forward, port) = await ForwardAsync(deadline.Token);
        await using var _ = forward;
        using var client = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(IPAddress.Loopback, port, deadline.Token);
        await client.SendAsync("GET / HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray(), SocketFlags.None, deadline.Token);

        var ended = await Assert.ThrowsAsync<SocketException>(async () => await client.ReceiveAsync(new byte[1], SocketFlags.None, deadline.Token));

        Assert.Equal(SocketError.ConnectionReset, ended.SocketErrorCode);
        await expose.WaitForErrorAsync("refused: cannot reach 127.0.0.1:", deadline.Token);
        await forward.WaitForErrorAsync("destination_refused", deadline.Token);
    }

    [Fact]
    public async Task Socks_refuses_other_names_and_IP_literals_with_their_reply_codes()
    {
        using var deadline = TestTimeouts.After(60);
        var (socks, port) = await SocksAsync(deadline.Token);
        await using var _ = socks;

        Assert.Equal(0x02, await RawSocksConnectAsync(port, Domain("example.com"), deadline.Token)); // not allowed by ruleset
        Assert.Equal(0x08, await RawSocksConnectAsync(port, [0x01, 93, 184, 215, 14], deadline.Token)); // IPv4: address type not supported
        Assert.Equal(0x08, await RawSocksConnectAsync(port, [0x04, .. IPAddress.IPv6Loopback.GetAddressBytes()], deadline.Token));
        Assert.Equal(0x08, await RawSocksConnectAsync(port, Domain("127.0.0.1"), deadline.Token)); // an IP literal as a name
        Assert.Equal(0x04, await RawSocksConnectAsync(port, Domain("web.not-a-node.overlay"), deadline.Token)); // host unreachable
        Assert.Equal(0x02, await RawSocksConnectAsync(port, Domain("web\n.overlay"), deadline.Token)); // control characters: never logged
        Assert.Equal(0x07, await RawSocksConnectAsync(port, Domain(ServiceHost), deadline.Token, command: 0x02)); // BIND: command not supported

        // A service nobody exposes is refused by the destination after the tunnel opened: success, then a reset.
        var (reply, reset) = await RawSocksExchangeAsync(port, Domain(ServiceHost), 0x01, deadline.Token);
        Assert.Equal((0x00, true), (reply, reset));
        await socks.WaitForErrorAsync("destination_refused", deadline.Token);

        // And as a program sees it: no connection, nothing fetched from outside the overlay.
        using var http = new HttpClient(new SocketsHttpHandler { Proxy = new WebProxy($"socks5://127.0.0.1:{port}"), UseProxy = true });
        await Assert.ThrowsAsync<HttpRequestException>(() => http.GetStringAsync("http://example.com/", deadline.Token));
        await socks.WaitForErrorAsync("refused (NotAllowedByRuleset)", deadline.Token);
    }

    [Fact]
    public async Task A_half_close_travels_end_to_end_and_the_other_direction_goes_on()
    {
        using var deadline = TestTimeouts.After(60);
        using var server = new TcpListener(IPAddress.Loopback, 0);
        server.Start();

        // A target that reads the whole request up to the client's FIN, and only then answers.
        var serving = Task.Run(async () =>
        {
            using var accepted = await server.AcceptSocketAsync(deadline.Token);
            var buffer = new byte[64 * 1024];
            long total = 0;
            int read;
            while ((read = await accepted.ReceiveAsync(buffer, SocketFlags.None, deadline.Token)) > 0)
            {
                total += read;
            }

            await accepted.SendAsync(System.Text.Encoding.ASCII.GetBytes($"got {total}"), SocketFlags.None, deadline.Token);
            accepted.Shutdown(SocketShutdown.Send);
        }, deadline.Token);

        await using var expose = await ExposeAsync(deadline.Token, $"127.0.0.1:{((IPEndPoint)server.LocalEndpoint).Port}");
        var (forward, port) = await ForwardAsync(deadline.Token);
        await using var _ = forward;
        using var client = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(IPAddress.Loopback, port, deadline.Token);
        await client.SendAsync(TestWebApp.Big.AsMemory(0, 1024 * 1024), SocketFlags.None, deadline.Token);
        client.Shutdown(SocketShutdown.Send);

        using var reply = new MemoryStream();
        var buffer = new byte[1024];
        int read;
        while ((read = await client.ReceiveAsync(buffer, SocketFlags.None, deadline.Token)) > 0)
        {
            reply.Write(buffer, 0, read);
        }

        Assert.Equal("got 1048576", System.Text.Encoding.ASCII.GetString(reply.ToArray()));
        await serving;
    }

    [Fact]
    public async Task A_SOCKS_client_that_never_finishes_its_handshake_is_cut_off_at_the_deadline()
    {
        using var deadline = TestTimeouts.After(60);
        var (socks, port) = await SocksAsync(deadline.Token, "--handshake-timeout", "1");
        await using var _ = socks;
        using var client = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(IPAddress.Loopback, port, deadline.Token);
        await client.SendAsync(new byte[] { 0x05, 0x02, 0x00 }, SocketFlags.None, deadline.Token); // one of two methods, then silence

        var ended = await Assert.ThrowsAsync<SocketException>(async () => await client.ReceiveAsync(new byte[1], SocketFlags.None, deadline.Token));

        Assert.Equal(SocketError.ConnectionReset, ended.SocketErrorCode);
        await socks.WaitForErrorAsync("the SOCKS handshake did not finish within 1 s (--handshake-timeout)", deadline.Token);
    }

    [Theory]
    [InlineData("socks --listen 0.0.0.0:1080", "--listen 0.0.0.0:1080: the SOCKS listener serves loopback only")]
    [InlineData("forward --listen localhost:9000 --to {B}/web", "--listen 'localhost:9000' is not an IP address and port")]
    [InlineData("forward --listen 127.0.0.1:9000 --to nobody/web", "--to 'nobody/web' is not <node id>/<service>")]
    [InlineData("expose --service web --target 127.0.0.1", "--target '127.0.0.1' is not a host and port")]
    [InlineData("forward --listen 127.0.0.1:9000 --to {B}/web --deadline 0", "--deadline must be a number of seconds above 0")]
    public async Task A_bad_address_or_limit_is_a_usage_error_naming_its_option(string args, string expected)
    {
        using var deadline = TestTimeouts.After(30);
        using var error = new StringWriter();
        var io = new CliIO { Input = new MemoryStream(), Output = new MemoryStream(), Error = error };
        var code = await OverlayCli.RunAsync(
            ["--node", Overlay.Nodes[0].Control.Url.ToString(), "--token-file", Overlay.Nodes[0].Control.TokenFile, .. args.Replace("{B}", fixture.B, StringComparison.Ordinal).Split(' ')],
            io, deadline.Token);

        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains(expected, error.ToString(), StringComparison.Ordinal);
    }

    // For the reader of the test log only: no test asserts a speed.
    private void Report(string via, int bytes, long started)
    {
        var elapsed = Stopwatch.GetElapsedTime(started);
        output.WriteLine($"{bytes} bytes via {via} through 3 relays in {elapsed.TotalMilliseconds:F0} ms ({bytes / elapsed.TotalSeconds / (1 << 20):F1} MiB/s)");
    }

    private static byte[] Domain(string name) => [0x03, (byte)name.Length, .. System.Text.Encoding.ASCII.GetBytes(name)];

    // A SOCKS5 client of its own (RFC 1928): no authentication, then one request; the reply code, then the connection ends.
    private static async Task<byte> RawSocksConnectAsync(int port, byte[] address, CancellationToken token, byte command = 0x01)
    {
        var (reply, reset) = await RawSocksExchangeAsync(port, address, command, token);
        Assert.False(reset, "a refusal closes the connection after its reply, it does not reset it");
        return reply;
    }

    // The reply code, and whether the connection then ended with a reset (true) or a clean end (false).
    private static async Task<(byte Reply, bool Reset)> RawSocksExchangeAsync(int port, byte[] address, byte command, CancellationToken token)
    {
        using var client = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(IPAddress.Loopback, port, token);
        await client.SendAsync(new byte[] { 0x05, 0x01, 0x00 }, SocketFlags.None, token);
        Assert.Equal(new byte[] { 0x05, 0x00 }, await ReceiveExactlyAsync(client, 2, token));
        await client.SendAsync((byte[])[0x05, command, 0x00, .. address, 0x00, 0x50], SocketFlags.None, token);
        var reply = await ReceiveExactlyAsync(client, 10, token);
        Assert.Equal(0x05, reply[0]);
        try
        {
            Assert.Equal(0, await client.ReceiveAsync(new byte[1], SocketFlags.None, token));
            return (reply[1], false);
        }
        catch (SocketException exception) when (exception.SocketErrorCode == SocketError.ConnectionReset)
        {
            return (reply[1], true);
        }
    }

    private static async Task<byte[]> ReceiveExactlyAsync(Socket socket, int count, CancellationToken token)
    {
        var buffer = new byte[count];
        for (var got = 0; got < count;)
        {
            var read = await socket.ReceiveAsync(buffer.AsMemory(got), SocketFlags.None, token);
            Assert.True(read > 0, $"the connection ended after {got} of {count} bytes");
            got += read;
        }

        return buffer;
    }

    private async Task<RunningCli> ExposeAsync(CancellationToken token, string? target = null)
    {
        using var b = Overlay.Client(1);
        await ListenTests.WaitAsync(async () => (await b.Api.GetInfoAsync(new V1.GetInfoRequest())).Listeners == 0, token);
        var expose = RunningCli.Start(Overlay, 1, "expose", "--service", ForwardingOverlay.Service, "--target", target ?? fixture.Web.Endpoint.ToString());
        await ListenTests.WaitAsync(async () => (await b.Api.GetInfoAsync(new V1.GetInfoRequest())).Listeners == 1 || expose.Exited, token);
        await expose.WaitForErrorAsync("warning: every node of the overlay can now reach", token);
        return expose;
    }

    private async Task<(RunningCli Forward, int Port)> ForwardAsync(CancellationToken token)
    {
        var port = Ports.Unused();
        var forward = RunningCli.Start(Overlay, 0, "forward", "--listen", $"127.0.0.1:{port}", "--to", $"{fixture.B}/{ForwardingOverlay.Service}", "--relays", "3");
        await forward.WaitForErrorAsync("forwarding 127.0.0.1:", token);
        return (forward, port);
    }

    private async Task<(RunningCli Socks, int Port)> SocksAsync(CancellationToken token, params string[] more)
    {
        var port = Ports.Unused();
        var socks = RunningCli.Start(Overlay, 0, ["socks", "--listen", $"127.0.0.1:{port}", "--relays", "3", .. more]);
        await socks.WaitForErrorAsync("SOCKS5 on 127.0.0.1:", token);
        return (socks, port);
    }
}
