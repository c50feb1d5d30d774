using Overlay.Host;
using Overlay.Host.Demo;
using Overlay.Host.Devnet;

return args switch
{
    ["demo", .. var rest] => ProtocolDemo.Run(rest, Console.Out),
    ["devnet", .. var rest] => await RunDevnetAsync(rest),
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

static int Usage(int code)
{
    (code == 0 ? Console.Out : Console.Error).WriteLine("""
        usage: Overlay.Host [--Overlay:Section:Key=value ...]     run one node from its configuration
               Overlay.Host devnet [--nodes N] [--relays R] [--pings K] [--bytes B]
               Overlay.Host demo [--relays R] [--bytes B] [--max-relays M] [--cell-size C] [--construction baseline|mac-array]

          (no verb)  one node: the Overlay section of appsettings.json, OVERLAY-style environment
                     overrides (Overlay__Link__Url=...), and --Overlay:... arguments.
          devnet     N real nodes on loopback in this process, joined from one seed; K round trips
                     through R relays (defaults: 8 nodes, 6 relays, 5 pings), then B bytes streamed
                     through a tunnel and back if --bytes is given.
          demo       the protocol alone, in memory: sizes and costs at every hop.
        """);
    return code;
}
