using System.Globalization;
using Overlay.Client;

namespace Overlay.Examples.Vote;

/// <summary>How a vote ended.</summary>
internal enum VoteOutcome
{
    /// <summary>Every ballot was counted and every voter's tally agreed.</summary>
    Tallied,

    /// <summary>Some voters did not sign their participation in time: named, nothing tallied.</summary>
    Stalled,

    /// <summary>Every round was aborted (wrong envelope count) or the tallies disagreed.</summary>
    Failed,
}

/// <summary>What the vote produced, for the output and the tests.</summary>
internal sealed record VoteResult(VoteOutcome Outcome, int Rounds, int[] Expected, int[]? Tallied, IReadOnlyList<string> Stallers);

/// <summary>
/// Runs the vote of the example: envelopes, the envelope check and signed participations, ballots,
/// and a tally every voter makes on its own and compares. A wrong envelope count aborts the round
/// and every voter starts again with a fresh envelope (naming who sent two would unmask everyone);
/// voters who do not sign in time are named.
/// </summary>
internal static class VoteRun
{
    private static readonly string[] Choices = ["yes", "no"];

    public static async Task<VoteResult> RunAsync(VoteOptions options, TextWriter output, CancellationToken cancellationToken)
    {
        await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"vote: {options.Voters} voters on a local overlay of {options.EffectiveNodes} nodes; every message to the board through {options.Relays} relays"));
        await using var overlay = await LocalOverlay.StartAsync(options.EffectiveNodes, Math.Max(options.Relays, 6), cancellationToken);

        var identities = Enumerable.Range(1, options.Voters).Select(_ => Signatures.Create()).ToList();
        var voters = new List<Voter>();
        try
        {
            var definition = new VoteDefinition("Adopt the proposal?", Choices,
                [.. identities.Select((key, i) => new VoterIdentity(VoterName(i), Signatures.PublicKeyOf(key)))]);
            var board = new BulletinBoard(definition);
            var boardNode = overlay.Nodes[0].Id.ToString();
            var choices = Enumerable.Range(0, options.Voters).Select(_ => Random.Shared.Next(Choices.Length)).ToArray();
            for (var i = 0; i < options.Voters; i++)
            {
                // Voters live on every node but the board's.
                var node = overlay.VoterClient(1 + (i % (overlay.Nodes.Count - 1)));
                voters.Add(new Voter(VoterName(i), identities[i], choices[i], definition, node, boardNode, options.Relays, options.PhaseTimeout));
            }

            var expected = new int[Choices.Length];
            foreach (var choice in choices)
            {
                expected[choice]++;
            }

            using var boardStop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var boardClient = overlay.BoardClient();
            using var listener = await boardClient.ListenAsync(BulletinBoard.Service, cancellationToken);
            var serving = board.ServeAsync(listener, boardClient, boardStop.Token);
            try
            {
                return await RoundsAsync(options, voters, expected, output, cancellationToken);
            }
            finally
            {
                await boardStop.CancelAsync();
                await serving;
            }
        }
        finally
        {
            voters.ForEach(v => v.Dispose());
            identities.ForEach(k => k.Dispose());
        }
    }

    private static async Task<VoteResult> RoundsAsync(VoteOptions options, IReadOnlyList<Voter> voters, int[] expected, TextWriter output, CancellationToken cancellationToken)
    {
        for (var round = 1; round <= options.MaxRounds; round++)
        {
            // 1. Each voter posts a fresh envelope anonymously; the cheat, if asked for, posts two.
            var cheat = options.DoubleEnvelope && round == 1;
            await Task.WhenAll(voters.Select((v, i) => v.PostEnvelopeAsync(round, cheat && i == 0 ? 1 : 0, cancellationToken)));

            // 2. Each checks that the board holds exactly one envelope per voter, its own among them.
            var checks = await Task.WhenAll(voters.Select(v => v.CheckEnvelopesAsync(round, cancellationToken)));
            if (checks.Any(c => c.Count != voters.Count || !c.OursPresent))
            {
                await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                    $"round {round}: the board holds {checks.Max(c => c.Count)} envelopes for {voters.Count} voters: aborted; every voter makes a fresh envelope"));
                continue;
            }

            // 3. Each signs, with its real identity, the set it saw; the stallers never do.
            var signing = voters.Skip(options.Stallers).ToList();
            await Task.WhenAll(signing.Select(v => v.PostParticipationAsync(round, cancellationToken)));
            var missing = await Task.WhenAll(signing.Select(v => v.MissingParticipationsAsync(round, cancellationToken)));
            var stallers = missing.SelectMany(m => m).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
            if (stallers.Count > 0)
            {
                await output.WriteLineAsync($"round {round}: stalled; no participation within {options.PhaseTimeout.TotalSeconds:F0} s from {string.Join(", ", stallers)}");
                return new VoteResult(VoteOutcome.Stalled, round, expected, null, stallers);
            }

            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"round {round}: {voters.Count} envelopes, {voters.Count} signed participations"));

            // 4. Each sends its ballot anonymously, signed with its envelope key and opening its commitment, with a
            //    reply block for the board's receipt (over relays none of which carried the ballot).
            var published = await Task.WhenAll(voters.Select(v => v.CastBallotAsync(round, cancellationToken)));

            // 5. Each tallies on its own; the tallies must agree.
            var tallies = await Task.WhenAll(voters.Select(v => v.TallyAsync(round, cancellationToken)));
            for (var i = 0; i < voters.Count; i++)
            {
                await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                    $"  {voters[i].Name}: envelope in the set, ballot {(published[i] ? "published (the board's receipt came back over a reply block)" : "NOT published")} and {(tallies[i].OursCounted ? "counted" : "NOT counted")}, tally {(tallies[i].SameCountsAs(tallies[0]) ? "agrees" : "DISAGREES")}"));
            }

            var agreed = tallies.All(t => t.SameCountsAs(tallies[0]) && t.OursCounted) && published.All(p => p) && tallies[0].Counts.AsSpan().SequenceEqual(expected);
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"tally: {Counts(tallies[0].Counts)}; {tallies[0].Invalid} invalid; {(agreed ? "every voter counted the same" : "the voters' tallies DISAGREE")}"));
            await output.WriteLineAsync($"cast (known only to this simulation, which chose every voter's ballot): {Counts(expected)}");
            return new VoteResult(agreed ? VoteOutcome.Tallied : VoteOutcome.Failed, round, expected, tallies[0].Counts, []);
        }

        await output.WriteLineAsync($"vote: {options.MaxRounds} rounds aborted; giving up");
        return new VoteResult(VoteOutcome.Failed, options.MaxRounds, expected, null, []);
    }

    private static string Counts(int[] counts) => string.Join(", ", Choices.Select((choice, k) => string.Create(CultureInfo.InvariantCulture, $"{choice} {counts[k]}")));

    private static string VoterName(int index) => string.Create(CultureInfo.InvariantCulture, $"voter-{index + 1:D2}");
}
