using Overlay.Cli;

using var interrupt = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    interrupt.Cancel();
};

return await OverlayCli.RunAsync(args, CliIO.System(), interrupt.Token);
