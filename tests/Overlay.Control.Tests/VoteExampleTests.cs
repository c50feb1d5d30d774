using Overlay.Examples.Vote;
using Xunit.Abstractions;

namespace Overlay.Control.Tests;

/// <summary>The vote example (examples/Vote), smaller: a real local overlay, the board a named service, every voter an application.</summary>
public sealed class VoteExampleTests(ITestOutputHelper output)
{
    [Fact]
    [Trait("Category", "Heavy")]
    public async Task A_second_envelope_aborts_the_round_and_the_next_round_tallies_every_ballot()
    {
        using var deadline = TestTimeouts.After(180);
        var log = new StringWriter();
        var result = await VoteRun.RunAsync(new VoteOptions { Voters = 5, Relays = 1, Nodes = 4, DoubleEnvelope = true }, log, deadline.Token);
        output.WriteLine(log.ToString());

        Assert.Equal(VoteOutcome.Tallied, result.Outcome);
        Assert.Equal(2, result.Rounds);
        Assert.Equal(result.Expected, result.Tallied);
        Assert.Contains("round 1: the board holds 6 envelopes for 5 voters: aborted", log.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    [Trait("Category", "Heavy")]
    public async Task Voters_who_do_not_sign_are_named_and_nothing_is_tallied()
    {
        using var deadline = TestTimeouts.After(180);
        var log = new StringWriter();
        var result = await VoteRun.RunAsync(new VoteOptions { Voters = 4, Relays = 1, Nodes = 4, Stallers = 1, PhaseTimeout = TimeSpan.FromSeconds(2) }, log, deadline.Token);
        output.WriteLine(log.ToString());

        Assert.Equal(VoteOutcome.Stalled, result.Outcome);
        Assert.Equal(["voter-01"], result.Stallers);
        Assert.Null(result.Tallied);
    }
}
