using Overlay.Host;
using Overlay.Host.Cli;
using Overlay.Host.Demo;
using Overlay.Host.Devnet;

return args switch
{
    ["demo", .. var rest] => ProtocolDemo.Run(rest, Console.Out),
    ["devnet", .. var rest] => await RunDevnetAsync(rest),
    ["ping", .. var rest] => await RunVerbAsync<PingOptions>("ping", rest, PingOptions.TryParse, PingCommand.RunAsync),
    ["health", .. var rest] => await RunVerbAsync<HealthOptions>("health", rest, HealthOptions.TryParse, HealthCommand.RunAsync),
    ["key", .. var rest] => KeyCommand.Run(rest, Console.Out, Console.Error) is var code && code == 2 ? Usage(2) : code,
    ["help" or "--help" or "-h"] => Usage(0),
    [var first, ..] when !first.StartsWith('-') => Usage(2),
    _ => await RunNodeAsync(args),
};

static async Task<int> RunNodeAsync(string[] args)
{
    var node = OverlayNode.Create(new OverlayNodeSettings { Args = args });
    await node.App.RunAsync();
    await node.DisposeAsync();
    return 0;
}

static async Task<int> RunDevnetAsync(string[] args)
{
    if (!DevnetOptions.TryParse(args, out var options, out var problem))
    {
        Console.Error.WriteLine($"devnet: {problem}");
        return Usage(2);
    }

    using var stop = new CancellationTokenSource();
    Console.CancelKeyPress += (_, e) =>
    {
        e.Cancel = true;
        stop.Cancel();
    };
    return await Devnet.RunAsync(options, Console.Out, stop.Token);
}

static async Task<int> RunVerbAsync<TOptions>(string verb, string[] args, VerbParser<TOptions> parse, Func<TOptions, TextWriter, TextWriter, CancellationToken, Task<int>> run)
{
    if (!parse(args, out var options, out var problem))
    {
        Console.Error.WriteLine($"{verb}: {problem}");
        return Usage(2);
    }

    using var stop = new CancellationTokenSource();
    Console.CancelKeyPress += (_, e) =>
    {
        e.Cancel = true;
        stop.Cancel();
    };
    return await run(options, Console.Out, Console.Error, stop.Token);
}

static int Usage(int code)
{
    (code == 0 ? Console.Out : Console.Error).WriteLine("""
        usage: Overlay.Host [--Overlay:Section:Key=value ...]     run one node from its configuration
               Overlay.Host devnet [--nodes N] [--relays R] [--pings K] [--bytes B]
               Overlay.Host ping --seed URL --relays R [--count K] [--to NODE_ID] [--timeout SECONDS] [--max-relays M] [--Overlay:Section:Key=value ...]
               Overlay.Host health --url URL [--url URL ...] [--peers P] [--timeout SECONDS]
               Overlay.Host key DIRECTORY
               Overlay.Host demo [--relays R] [--bytes B] [--max-relays M] [--cell-size C] [--construction baseline|mac-array]

          (no verb)  one node: the Overlay section of appsettings.json, OVERLAY-style environment
                     overrides (Overlay__Link__Url=...), and --Overlay:... arguments.
          devnet     N real nodes on loopback in this process, joined from one seed; K round trips
                     through R relays (defaults: 8 nodes, 6 relays, 5 pings), then B bytes streamed
                     through a tunnel and back if --bytes is given.
          ping       a short-lived node (127.0.0.1, port 0, temporary data directory) joins through the
                     seed, waits up to --timeout (default 30 s) until R relays and a destination are up,
                     then K (default 1) round trips of 64 bytes through R relays to NODE_ID (64 hex
                     digits) or a random peer; --max-relays must match the network's (default 32).
                     Exit 0 all succeeded, 1 a tunnel failed, 2 usage error, 3 could not join in time.
          health     waits up to --timeout (default 30 s) until every node answers SERVING on
                     grpc.health.v1.Health/Check and, with --peers, lists at least P up peers.
                     Exit 0 ready, 2 usage error, 3 not ready in time.
          key        creates DIRECTORY/keys/identity.key (0700/0600) unless it exists, and prints its
                     public key: a node id, or an authority key (Overlay:Network:Authorities).
                     Exit 0 done, 1 the directory fails the key checks, 2 usage error.
          demo       the protocol alone, in memory: sizes and costs at every hop.
        """);
    return code;
}

internal delegate bool VerbParser<TOptions>(IReadOnlyList<string> args, out TOptions options, out string? problem);
