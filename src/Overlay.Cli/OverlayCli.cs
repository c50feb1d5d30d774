using System.CommandLine;

namespace Overlay.Cli;

/// <summary>
/// The <c>overlay</c> command line: administers a node and uses the overlay through the node's
/// control API. Human tables by default, <c>--json</c> (one JSON object per line for streams)
/// for scripts; exit codes in <see cref="ExitCodes"/>.
/// </summary>
public static class OverlayCli
{
    /// <summary>Runs the command line with the given streams; returns the exit code.</summary>
    public static async Task<int> RunAsync(string[] args, CliIO io, CancellationToken cancellationToken = default)
    {
        var options = new GlobalOptions();
        var root = BuildCommands(options, io);
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var error in parse.Errors)
            {
                await io.Error.WriteLineAsync($"overlay: {error.Message}");
            }

            await io.Error.WriteLineAsync("overlay: see `overlay --help`");
            return ExitCodes.Usage;
        }

        try
        {
            return await parse.InvokeAsync(new InvocationConfiguration { Output = io.Out, Error = io.Error, EnableDefaultExceptionHandler = false }, cancellationToken);
        }
        catch (CliException failure)
        {
            await io.Error.WriteLineAsync($"overlay: {failure.Message}");
            return failure.ExitCode;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return ExitCodes.Cancelled;
        }
    }

    private static RootCommand BuildCommands(GlobalOptions o, CliIO io)
    {
        var root = new RootCommand("Administer an Overlay node and use the overlay through its control API.");
        foreach (var option in o.All)
        {
            root.Options.Add(option);
        }

        var commands = new Commands(o, io);

        var info = new Command("info", "Show the node: id, endpoints, onion key, protocol, uptime, counts.");
        info.SetAction(commands.InfoAsync);
        root.Subcommands.Add(info);

        var stats = new Command("stats", "Show the node's counters.");
        stats.SetAction(commands.StatsAsync);
        root.Subcommands.Add(stats);

        var peers = new Command("peers", "List the peers the node knows.");
        peers.SetAction(commands.PeersAsync);
        var watch = new Command("watch", "Print peer status changes as they happen (Ctrl+C to stop).");
        watch.Options.Add(o.Current);
        watch.Options.Add(o.Count);
        watch.SetAction(commands.WatchPeersAsync);
        var add = new Command("add", "Add the node at a link endpoint (it must prove its identity).");
        add.Arguments.Add(o.Endpoint);
        add.SetAction(commands.AddPeerAsync);
        var remove = new Command("remove", "Forget a peer; --ban refuses it until the node restarts.");
        remove.Arguments.Add(o.NodeId);
        remove.Options.Add(o.Ban);
        remove.SetAction(commands.RemovePeerAsync);
        peers.Subcommands.Add(watch);
        peers.Subcommands.Add(add);
        peers.Subcommands.Add(remove);
        root.Subcommands.Add(peers);

        var ping = new Command("ping", "Round trips through R relays to a node: time per attempt, or the failing hop.");
        foreach (var option in new Option[] { o.To, o.Relays, o.Count, o.Bytes, o.Interval, o.Deadline, o.Reuse })
        {
            ping.Options.Add(option);
        }

        ping.SetAction(commands.PingAsync);
        root.Subcommands.Add(ping);

        var send = new Command("send", "Send standard input through a tunnel and write the reply to standard output.");
        foreach (var option in new Option[] { o.To, o.Relays, o.Service, o.OneWay, o.Deadline, o.ReplyViaOtherRoute, o.ReplyRelays, o.ReplyWait })
        {
            send.Options.Add(option);
        }

        send.SetAction(commands.SendAsync);
        root.Subcommands.Add(send);

        var listen = new Command("listen", "Receive the tunnels that end at this node: print each message and reply (an echo, or a command's output).");
        listen.Options.Add(o.Service);
        listen.Options.Add(o.Exec);
        listen.Options.Add(o.Count);
        listen.SetAction(commands.ListenAsync);
        root.Subcommands.Add(listen);

        var expose = new Command("expose", "Serve a named service from a local TCP target: each tunnel for it becomes a connection this process dials.");
        foreach (var option in new Option[] { o.Service, o.Target, o.MaxConnections, o.ConnectTimeout })
        {
            expose.Options.Add(option);
        }

        expose.SetAction(commands.ExposeAsync);
        root.Subcommands.Add(expose);

        var forward = new Command("forward", "Listen on a local TCP port: each connection becomes one tunnel to a service.");
        foreach (var option in new Option[] { o.Listen, o.ForwardTo, o.Relays, o.ConnectionDeadline, o.MaxConnections })
        {
            forward.Options.Add(option);
        }

        forward.SetAction(commands.ForwardAsync);
        root.Subcommands.Add(forward);

        var socks = new Command("socks", "A SOCKS5 proxy on loopback for <service>.<node id in base32>.overlay names only.");
        foreach (var option in new Option[] { o.Listen, o.Relays, o.ConnectionDeadline, o.HandshakeTimeout, o.MaxConnections })
        {
            socks.Options.Add(option);
        }

        socks.SetAction(commands.SocksAsync);
        root.Subcommands.Add(socks);

        var tunnels = new Command("tunnels", "List the tunnels open through the control API.");
        tunnels.SetAction(commands.TunnelsAsync);
        var close = new Command("close", "Close an open tunnel.");
        close.Arguments.Add(o.TunnelId);
        close.SetAction(commands.CloseTunnelAsync);
        tunnels.Subcommands.Add(close);
        root.Subcommands.Add(tunnels);

        var events = new Command("events", "Print node events as they happen (tunnels, peers, key rotation).");
        events.Options.Add(o.Types);
        events.Options.Add(o.Count);
        events.SetAction(commands.EventsAsync);
        root.Subcommands.Add(events);

        var rotate = new Command("rotate-keys", "Rotate the node's onion key now.");
        rotate.SetAction(commands.RotateKeysAsync);
        root.Subcommands.Add(rotate);
        Commands.AddMembers(root, commands, o);
        return root;
    }
}

/// <summary>The options, shared by the commands.</summary>
internal sealed class GlobalOptions
{
    public Option<string> Node { get; } = new("--node")
    {
        Description = "The node's control endpoint (default: $OVERLAY_NODE or http://127.0.0.1:7401)",
        Recursive = true,
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("OVERLAY_NODE") ?? "http://127.0.0.1:7401",
    };

    public Option<string?> TokenFile { get; } = new("--token-file") { Description = "The token file (default: $OVERLAY_TOKEN_FILE or ./data/control.token)", Recursive = true };

    public Option<bool> Json { get; } = new("--json") { Description = "Machine-readable output: JSON (one object per line for streams)", Recursive = true };

    public Option<string?> ClientCertificate { get; } = new("--client-cert") { Description = "Client certificate for mTLS (PEM or PFX)", Recursive = true };

    public Option<string?> ClientKey { get; } = new("--client-key") { Description = "The PEM private key of --client-cert, if separate", Recursive = true };

    public IEnumerable<Option> All => [Node, TokenFile, Json, ClientCertificate, ClientKey];

    public Option<string?> To { get; } = new("--to") { Description = "Destination node id (64 hex digits); default: a random peer" };

    public Option<uint> Relays { get; } = new("--relays", "-r") { Description = "Relays before the destination", DefaultValueFactory = _ => 3 };

    public Option<uint> Count { get; } = new("--count", "-c") { Description = "How many (attempts, messages, tunnels); 0 = no limit where that makes sense" };

    public Option<uint> Bytes { get; } = new("--bytes") { Description = "Request bytes per ping", DefaultValueFactory = _ => 64 };

    public Option<double> Interval { get; } = new("--interval") { Description = "Seconds between pings" };

    public Option<double> Deadline { get; } = new("--deadline") { Description = "Tunnel deadline in seconds (default: the node's)" };

    public Option<string?> Service { get; } = new("--service") { Description = "A named service at the destination (send), or the one to listen for (listen); default: the node's default service" };

    public Option<bool> OneWay { get; } = new("--one-way") { Description = "Send only: no reply" };

    public Option<bool> ReplyViaOtherRoute { get; } = new("--reply-via-other-route")
    {
        Description = "Send one way with a reply block; the reply comes back over relays none of which is on the message's route",
    };

    public Option<uint> ReplyRelays { get; } = new("--reply-relays") { Description = "Relays of the reply route (with --reply-via-other-route)", DefaultValueFactory = _ => 3 };

    public Option<double> ReplyWait { get; } = new("--reply-wait") { Description = "Seconds to wait for the reply once the message is delivered (default: until the reply block expires)" };

    public Option<bool> Reuse { get; } = new("--reuse") { Description = "Every attempt a new stream on one route the node keeps (no public-key work per attempt; its hops can link the attempts)" };

    public Option<string?> Exec { get; } = new("--exec") { Description = "Reply with this shell command's output (the request on its standard input); default: echo" };

    public Option<string?> Target { get; } = new("--target") { Description = "The TCP address this process dials for each tunnel, e.g. 127.0.0.1:8080", Required = true };

    public Option<string?> Listen { get; } = new("--listen") { Description = "The local address to listen on, e.g. 127.0.0.1:9000", Required = true };

    public Option<string?> ForwardTo { get; } = new("--to") { Description = "The service: <node id>/<service> (the id in 64 hex digits or its base32)", Required = true };

    public Option<double> ConnectionDeadline { get; } = new("--deadline") { Description = "Each connection's tunnel deadline in seconds (at most the network's)", DefaultValueFactory = _ => 3600 };

    public Option<double> ConnectTimeout { get; } = new("--connect-timeout") { Description = "Seconds to reach the target before the tunnel is refused", DefaultValueFactory = _ => 5 };

    public Option<double> HandshakeTimeout { get; } = new("--handshake-timeout") { Description = "Seconds for a client's SOCKS handshake and its tunnel's opening", DefaultValueFactory = _ => 15 };

    public Option<int> MaxConnections { get; } = new("--max-connections") { Description = "Connections served at once (more wait)", DefaultValueFactory = _ => 64 };

    public Option<bool> Current { get; } = new("--current") { Description = "Print the known peers first" };

    public Option<bool> Ban { get; } = new("--ban") { Description = "Refuse the peer until the node restarts" };

    public Option<string[]> Types { get; } = new("--type", "-t")
    {
        Description = "Only these events: tunnel-opened, tunnel-closed, tunnel-failed, peer-up, peer-down, key-rotated",
        AllowMultipleArgumentsPerToken = true,
    };

    public Argument<string> Endpoint { get; } = new("endpoint") { Description = "The peer's link endpoint, e.g. http://10.0.0.7:7400" };

    public Argument<string> NodeId { get; } = new("node-id") { Description = "The peer's node id (64 hex digits)" };

    public Argument<string> TunnelId { get; } = new("tunnel-id") { Description = "The tunnel id, as `overlay tunnels` shows it" };
}
