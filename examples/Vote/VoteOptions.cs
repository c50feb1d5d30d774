using System.Globalization;

namespace Overlay.Examples.Vote;

/// <summary>The example's command line.</summary>
internal sealed record VoteOptions
{
    public int Voters { get; init; } = 20;

    public int Relays { get; init; } = 3;

    /// <summary>Nodes of the local overlay; 0: enough for the relays, at least 8.</summary>
    public int Nodes { get; init; }

    /// <summary>One voter posts a second envelope in the first round (the vote must abort and restart).</summary>
    public bool DoubleEnvelope { get; init; }

    /// <summary>Voters who never sign their participation (the vote must stop and name them).</summary>
    public int Stallers { get; init; }

    /// <summary>How long a voter waits for the others at each step.</summary>
    public TimeSpan PhaseTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Rounds tried before giving up (each abort starts one with fresh envelopes).</summary>
    public int MaxRounds { get; init; } = 3;

    public int EffectiveNodes => Nodes > 0 ? Nodes : Math.Max(8, Relays + 3);

    /// <summary>Parses <c>--voters N --relays R --nodes M --double-envelope --stallers K --phase-timeout SECONDS</c>.</summary>
    public static bool TryParse(IReadOnlyList<string> args, out VoteOptions options, out string? problem)
    {
        options = new VoteOptions();
        for (var i = 0; i < args.Count; i++)
        {
            var value = i + 1 < args.Count ? args[i + 1] : null;
            var number = 0;
            var ok = value is not null && int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out number);
            switch (args[i])
            {
                case "--voters" when ok && number is >= 2 and <= 200: options = options with { Voters = number }; i++; break;
                case "--relays" when ok && number <= 16: options = options with { Relays = number }; i++; break;
                case "--nodes" when ok && number is >= 3 and <= 64: options = options with { Nodes = number }; i++; break;
                case "--stallers" when ok: options = options with { Stallers = number }; i++; break;
                case "--phase-timeout" when ok && number is >= 1 and <= 3600: options = options with { PhaseTimeout = TimeSpan.FromSeconds(number) }; i++; break;
                case "--double-envelope": options = options with { DoubleEnvelope = true }; break;
                default:
                    problem = $"bad or unknown argument '{args[i]}'";
                    return false;
            }
        }

        problem = options.EffectiveNodes < options.Relays + 2 ? $"--relays {options.Relays} needs at least {options.Relays + 2} nodes"
            : options.Stallers >= options.Voters ? "--stallers must leave at least one voter who signs"
            : null;
        return problem is null;
    }
}
