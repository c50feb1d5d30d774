using Overlay.Examples.Vote;

if (!VoteOptions.TryParse(args, out var options, out var problem))
{
    Console.Error.WriteLine($"vote: {problem}");
    Console.Error.WriteLine("usage: --voters N --relays R [--nodes M] [--double-envelope] [--stallers K] [--phase-timeout SECONDS]");
    return 2;
}

using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    cancel.Cancel();
};
var result = await VoteRun.RunAsync(options, Console.Out, cancel.Token);
return result.Outcome == VoteOutcome.Tallied ? 0 : 1;
