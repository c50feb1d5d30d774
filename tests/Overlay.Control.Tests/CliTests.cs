using System.Text;
using System.Text.Json;
using Overlay.Cli;
using V1 = Overlay.Protocol.Control.V1;

namespace Overlay.Control.Tests;

/// <summary>The `overlay` command line, run in process (its command tree) against the shared overlay.</summary>
[Collection(SharedOverlayCollection.Name)]
public sealed partial class CliTests(SharedOverlay shared)
{
    private TestOverlay Overlay => shared.Overlay;

    internal sealed record Run(int ExitCode, string Output, string Error, byte[] RawOutput);

    private Task<Run> RunAsync(int node, string args, byte[]? stdin = null, bool withToken = true, CancellationToken token = default, string[]? extra = null) =>
        RunAsync(node, args, new MemoryStream(stdin ?? []), withToken, token, extra);

    internal async Task<Run> RunAsync(int node, string args, Stream stdin, bool withToken = true, CancellationToken token = default, string[]? extra = null)
    {
        var arguments = new List<string>();
        if (!args.Contains("--node", StringComparison.Ordinal))
        {
            arguments.AddRange(["--node", Overlay.Nodes[node].Control.Url.ToString()]);
        }

        if (withToken)
        {
            arguments.AddRange(["--token-file", Overlay.Nodes[node].Control.TokenFile]);
        }

        arguments.AddRange(args.Split(' ', StringSplitOptions.RemoveEmptyEntries));
        arguments.AddRange(extra ?? []);
        using var output = new MemoryStream();
        using var error = new StringWriter();
        var io = new CliIO { Input = stdin, Output = output, Error = error };
        using var deadline = TestTimeouts.After(30);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, token);
        var code = await OverlayCli.RunAsync([.. arguments], io, linked.Token);
        var raw = output.ToArray();
        return new Run(code, Encoding.UTF8.GetString(raw), error.ToString(), raw);
    }

    [Fact]
    public async Task Info_prints_a_table_or_json()
    {
        var table = await RunAsync(0, "info");
        Assert.Equal(0, table.ExitCode);
        Assert.Contains(Overlay.Nodes[0].Id.ToString(), table.Output, StringComparison.Ordinal);
        Assert.Contains("onion key epoch", table.Output, StringComparison.Ordinal);

        var json = await RunAsync(0, "info --json");
        Assert.Equal(0, json.ExitCode);
        using var document = JsonDocument.Parse(json.Output);
        Assert.Equal(Overlay.Nodes[0].Id.ToString(), document.RootElement.GetProperty("nodeId").GetString());
        Assert.Equal(4, document.RootElement.GetProperty("peersUp").GetInt32());
    }

    [Fact]
    public async Task Peers_lists_every_peer()
    {
        var table = await RunAsync(0, "peers");
        Assert.Equal(0, table.ExitCode);
        foreach (var peer in Overlay.Nodes.Skip(1))
        {
            Assert.Contains(peer.Id.ToString(), table.Output, StringComparison.Ordinal);
        }

        var json = await RunAsync(0, "peers --json");
        using var document = JsonDocument.Parse(json.Output);
        Assert.Equal(4, document.RootElement.GetProperty("peers").GetArrayLength());
        Assert.All(document.RootElement.GetProperty("peers").EnumerateArray(), p => Assert.Equal("PEER_STATUS_UP", p.GetProperty("status").GetString()));

        var watch = await RunAsync(0, "peers watch --current --count 4 --json");
        Assert.Equal(0, watch.ExitCode);
        Assert.Equal(4, watch.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }

    [Fact]
    public async Task Ping_prints_each_attempt_and_a_summary()
    {
        var run = await RunAsync(0, $"ping --to {Overlay.Nodes[1].Id} --relays 2 --count 3");
        Assert.True(run.ExitCode == 0, run.Error);
        Assert.Contains("attempt 3: 2 relays", run.Output, StringComparison.Ordinal);
        Assert.Contains("3 attempts, 3 ok, 0 failed", run.Output, StringComparison.Ordinal);

        var json = await RunAsync(0, $"ping --to {Overlay.Nodes[1].Id} --relays 1 --count 2 --json");
        var lines = json.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.All(lines, line => Assert.True(JsonDocument.Parse(line).RootElement.GetProperty("ok").GetBoolean()));
    }

    [Fact]
    public async Task Ping_with_reuse_sends_every_attempt_on_one_route()
    {
        var run = await RunAsync(0, $"ping --to {Overlay.Nodes[1].Id} --relays 1 --count 3 --reuse --json");
        Assert.True(run.ExitCode == 0, run.Error);
        var routes = run.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => JsonDocument.Parse(line).RootElement.GetProperty("route").ToString()).ToList();
        Assert.Equal(3, routes.Count);
        Assert.Single(routes.Distinct());
    }

    [Fact]
    public async Task Send_pipes_stdin_through_a_tunnel_and_the_reply_to_stdout()
    {
        var request = new byte[200_000];
        Random.Shared.NextBytes(request);
        var run = await RunAsync(0, $"send --to {Overlay.Nodes[1].Id} --relays 2", request);
        Assert.True(run.ExitCode == 0, run.Error);
        Assert.Equal(request, run.RawOutput); // echoed: nobody listens on B

        var oneWay = await RunAsync(0, "send --relays 1 --one-way --json", "vote"u8.ToArray());
        Assert.Equal(0, oneWay.ExitCode);
        Assert.Equal("4", JsonDocument.Parse(oneWay.Output).RootElement.GetProperty("bytesSent").GetString());
    }

    [Fact]
    public async Task Listen_prints_the_message_and_replies_with_a_command_output()
    {
        using var deadline = TestTimeouts.After(30);
        var listening = RunAsync(1, "listen --count 1", token: deadline.Token, extra: ["--exec", "tr a-z A-Z"]);
        using var stats = Overlay.Client(1);
        await ListenTests.WaitAsync(async () => (await stats.Api.GetInfoAsync(new V1.GetInfoRequest())).Listeners == 1 || listening.IsCompleted, deadline.Token);

        var send = await RunAsync(0, $"send --to {Overlay.Nodes[1].Id} --relays 1", "hello overlay"u8.ToArray());
        var listen = await listening;
        Assert.True(listen.ExitCode == 0, listen.Error);
        Assert.True(send.ExitCode == 0, send.Error);
        Assert.Contains("hello overlay", listen.Output, StringComparison.Ordinal);
        Assert.Equal("HELLO OVERLAY", send.Output);
    }

    [Fact]
    public async Task Listen_echoes_by_default_and_prints_json()
    {
        using var deadline = TestTimeouts.After(30);
        var listening = RunAsync(1, "listen --count 1 --json", token: deadline.Token);
        using var stats = Overlay.Client(1);
        await ListenTests.WaitAsync(async () => (await stats.Api.GetInfoAsync(new V1.GetInfoRequest())).Listeners == 1 || listening.IsCompleted, deadline.Token);
        var send = await RunAsync(0, $"send --to {Overlay.Nodes[1].Id} --relays 0", "ping"u8.ToArray());
        var listen = await listening;
        Assert.Equal("ping", send.Output);
        var line = JsonDocument.Parse(listen.Output).RootElement;
        Assert.Equal("ping", line.GetProperty("text").GetString());
        Assert.Equal("duplex", line.GetProperty("mode").GetString());
    }

    [Fact]
    public async Task Tunnels_events_and_rotate_keys()
    {
        var tunnels = await RunAsync(0, "tunnels --json");
        Assert.Equal(0, tunnels.ExitCode);
        Assert.Equal("{ \"tunnels\": [ ] }", tunnels.Output.Trim());

        using var deadline = TestTimeouts.After(30);
        var events = RunAsync(4, "events --type key-rotated --count 1", token: deadline.Token);
        using var client = Overlay.Client(4);
        await ListenTests.WaitAsync(async () => (await client.Api.GetStatsAsync(new V1.GetStatsRequest())).EventSubscribers >= 1 || events.IsCompleted, deadline.Token);
        var rotate = await RunAsync(4, "rotate-keys");
        Assert.True(rotate.ExitCode == 0, rotate.Error);
        Assert.Contains("onion key rotated", rotate.Output, StringComparison.Ordinal);
        var seen = await events;
        Assert.Equal(0, seen.ExitCode);
        Assert.Contains("key-rotated", seen.Output, StringComparison.Ordinal);

        var close = await RunAsync(0, "tunnels close 0123456789abcdef");
        Assert.Equal(ExitCodes.NotFound, close.ExitCode);
        Assert.Contains("overlay tunnels", close.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Exit_codes_mean_something_and_errors_say_what_to_do()
    {
        var noToken = await RunAsync(0, "info --token-file /nonexistent/control.token", withToken: false);
        Assert.Equal(ExitCodes.Auth, noToken.ExitCode);
        Assert.Contains("--token-file", noToken.Error, StringComparison.Ordinal);

        var wrongToken = await RunAsync(0, $"info --token-file {Overlay.Nodes[1].Control.TokenFile}", withToken: false);
        Assert.Equal(ExitCodes.Auth, wrongToken.ExitCode);
        Assert.Contains("bad token", wrongToken.Error, StringComparison.Ordinal);

        var unknown = await RunAsync(0, $"ping --to {new string('e', 64)} --relays 1");
        Assert.Equal(ExitCodes.NotFound, unknown.ExitCode);
        Assert.Contains("overlay peers", unknown.Error, StringComparison.Ordinal);

        var malformed = await RunAsync(0, "ping --to 12345 --relays 1");
        Assert.Equal(ExitCodes.Usage, malformed.ExitCode);

        var tooMany = await RunAsync(0, $"send --to {Overlay.Nodes[1].Id} --relays 40", "x"u8.ToArray());
        Assert.Equal(ExitCodes.Usage, tooMany.ExitCode);
        Assert.Contains("MaxRelays", tooMany.Error, StringComparison.Ordinal);

        var badArgs = await RunAsync(0, "ping --relays lots");
        Assert.Equal(ExitCodes.Usage, badArgs.ExitCode);

        var denied = await RunAsync(0, $"rotate-keys --token-file {Overlay.ApplicationTokenFile}", withToken: false);
        Assert.Equal(ExitCodes.Auth, denied.ExitCode);
        Assert.Contains("operator token", denied.Error, StringComparison.Ordinal);

        var down = await RunAsync(0, $"info --node http://127.0.0.1:1 --token-file {Overlay.Nodes[0].Control.TokenFile}", withToken: false);
        Assert.Equal(ExitCodes.Unavailable, down.ExitCode);
        Assert.Contains("is the node running", down.Error, StringComparison.Ordinal);

        var linkEndpoint = await RunAsync(0, $"info --node {Overlay.Nodes[0].LinkEndpoint} --token-file {Overlay.Nodes[0].Control.TokenFile}", withToken: false);
        Assert.Equal(ExitCodes.Usage, linkEndpoint.ExitCode);
        Assert.Contains("link endpoint", linkEndpoint.Error, StringComparison.Ordinal);
    }
}
