using Overlay.Host.Demo;

return args switch
{
    ["demo", .. var rest] => ProtocolDemo.Run(rest, Console.Out),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("""
        usage: Overlay.Host demo [--relays R] [--bytes B] [--max-relays M] [--cell-size C] [--construction baseline|mac-array]

          demo   an in-memory tunnel through R relays: builds the onion header, processes it at
                 every hop, streams B bytes each way through the cell layers and prints the sizes
                 each hop saw and the time each step took.
        """);
    return 2;
}
