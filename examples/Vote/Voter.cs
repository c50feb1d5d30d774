using System.Diagnostics;
using System.Security.Cryptography;
using NSec.Cryptography;
using Overlay.Client;

namespace Overlay.Examples.Vote;

/// <summary>
/// One voter: an application on its own node's control API. Everything it sends to the board goes
/// through <c>relays</c> relays, so the board's node learns which node sent nothing; envelopes and
/// ballots are one-way messages (resent after a failure: the board keeps one of each).
/// </summary>
internal sealed class Voter(string name, Key identity, int choice, VoteDefinition vote, OverlayClient node, string boardNode, int relays, TimeSpan phaseTimeout) : IDisposable
{
    private const int MaxSends = 5;

    // Far above a round's snapshot (at most four envelopes per voter, one participation and ballot each, as base64 JSON).
    private const int MaxSnapshotBytes = 4 * 1024 * 1024;
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(200);

    private Key? _envelopeKey;
    private byte[] _nonce = [];

    public string Name { get; } = name;

    public int Choice { get; } = choice;

    /// <summary>This round's envelope key, once made.</summary>
    public byte[] EnvelopeKey => Signatures.PublicKeyOf(_envelopeKey ?? throw new InvalidOperationException("no envelope yet"));

    private OverlayTarget Board => new() { Destination = boardNode, Relays = relays, Service = BulletinBoard.Service };

    /// <summary>Makes a fresh envelope for <paramref name="round"/> (a key pair and a commitment to the ballot) and posts it; <paramref name="extra"/> more are a cheat.</summary>
    public async Task PostEnvelopeAsync(int round, int extra, CancellationToken cancellationToken)
    {
        _envelopeKey?.Dispose();
        _envelopeKey = Signatures.Create();
        _nonce = RandomNumberGenerator.GetBytes(32);
        await PostAsync(Envelope(round, EnvelopeKey, vote.Commitment(round, Choice, _nonce)), cancellationToken);
        for (var i = 0; i < extra; i++)
        {
            using var fake = Signatures.Create();
            await PostAsync(Envelope(round, Signatures.PublicKeyOf(fake), RandomNumberGenerator.GetBytes(32)), cancellationToken);
        }
    }

    /// <summary>Waits for as many envelopes as voters (or the deadline); true when there are exactly that many and ours is one.</summary>
    public async Task<EnvelopeCheck> CheckEnvelopesAsync(int round, CancellationToken cancellationToken)
    {
        var board = await PollAsync(round, b => b.Envelopes.Count >= vote.Voters.Count, cancellationToken);
        var ours = EnvelopeKey;
        var present = board.Envelopes.Any(e => e.Key.AsSpan().SequenceEqual(ours));
        return new EnvelopeCheck(board.Envelopes.Count, present);
    }

    /// <summary>Signs, with the voter's real identity, that it saw exactly the envelopes on the board.</summary>
    public async Task PostParticipationAsync(int round, CancellationToken cancellationToken)
    {
        var board = await ReadAsync(round, cancellationToken);
        var statement = vote.ParticipationStatement(round, board.Envelopes.Select(e => e.Key));
        await PostAsync(new BoardRequest { Kind = BoardRequest.Participation, Round = round, Voter = Name, Signature = Signatures.Sign(identity, statement) }, cancellationToken);
    }

    /// <summary>Waits until every voter's valid participation is on the board; returns those missing at the deadline.</summary>
    public async Task<IReadOnlyList<string>> MissingParticipationsAsync(int round, CancellationToken cancellationToken)
    {
        var board = await PollAsync(round, b => Missing(b, round).Count == 0, cancellationToken);
        return Missing(board, round);
    }

    /// <summary>
    /// Sends the ballot, signed with the envelope key and opening its commitment, with a reply block for the
    /// board's receipt; true once the receipt says it is published and a read of the board shows it.
    /// </summary>
    public async Task<bool> CastBallotAsync(int round, CancellationToken cancellationToken)
    {
        var statement = vote.BallotStatement(round, Choice, _nonce);
        var key = EnvelopeKey;
        var ballot = BoardJson.Encode(new BoardRequest
        {
            Kind = BoardRequest.Ballot, Round = round, Key = key, Choice = Choice, Nonce = _nonce,
            Signature = Signatures.Sign(_envelopeKey!, statement),
        });
        var receipt = await SendWithReceiptAsync(ballot, cancellationToken);
        if (receipt is not { Published: true } || receipt.Round != round || !receipt.Key.AsSpan().SequenceEqual(key))
        {
            return false;
        }

        var board = await PollAsync(round, b => b.Ballots.Any(x => x.Key.AsSpan().SequenceEqual(key)), cancellationToken);
        return board.Ballots.Any(x => x.Key.AsSpan().SequenceEqual(key));
    }

    /// <summary>Waits for every ballot (or the deadline), then counts those that open an envelope of the set.</summary>
    public async Task<Tally> TallyAsync(int round, CancellationToken cancellationToken)
    {
        var board = await PollAsync(round, b => b.Ballots.Count >= vote.Voters.Count, cancellationToken);
        var counts = new int[vote.Choices.Count];
        var invalid = 0;
        var ours = EnvelopeKey;
        var counted = false;
        foreach (var ballot in board.Ballots)
        {
            var envelope = board.Envelopes.FirstOrDefault(e => e.Key.AsSpan().SequenceEqual(ballot.Key));
            if (envelope is null || !Ballots.Opens(vote, round, envelope, ballot.Choice, ballot.Nonce, ballot.Signature))
            {
                invalid++;
                continue;
            }

            counts[ballot.Choice]++;
            counted |= ballot.Key.AsSpan().SequenceEqual(ours);
        }

        return new Tally(counts, invalid, counted);
    }

    public void Dispose() => _envelopeKey?.Dispose();

    private List<string> Missing(BoardSnapshot board, int round)
    {
        var statement = vote.ParticipationStatement(round, board.Envelopes.Select(e => e.Key));
        return [.. vote.Voters
            .Where(v => !board.Participations.Any(p => p.Voter == v.Name && Signatures.Verify(v.PublicKey, statement, p.Signature)))
            .Select(v => v.Name)];
    }

    private static BoardRequest Envelope(int round, byte[] key, byte[] commitment) =>
        new() { Kind = BoardRequest.Envelope, Round = round, Key = key, Commitment = commitment };

    // A one-way message to the board through the relays, sent again on a typed failure (the board keeps one of each).
    private async Task PostAsync(BoardRequest request, CancellationToken cancellationToken)
    {
        var bytes = BoardJson.Encode(request);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await node.SendAsync(Board, bytes, cancellationToken);
                return;
            }
            catch (OverlayTunnelException) when (attempt < MaxSends)
            {
                // A relay failed or the delivery was not confirmed: a new route, the same message.
            }
        }
    }

    // A one-way message carrying a reply block, sent again on a typed failure (the board keeps one ballot per envelope);
    // the board's receipt, or null when none came within the phase.
    private async Task<BoardReceipt?> SendWithReceiptAsync(byte[] message, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var sent = await node.SendWithReplyAsync(Board, message, relays, phaseTimeout, cancellationToken);
                return BoardJson.DecodeReceipt(sent.Reply.Span);
            }
            catch (OverlayNoReplyException)
            {
                return null;
            }
            catch (OverlayTunnelException) when (attempt < MaxSends)
            {
                // A relay failed or the delivery was not confirmed: a new route, the same ballot.
            }
        }
    }

    // Reads the board through a tunnel until the condition holds, or returns what it last read once the phase's time is up.
    private async Task<BoardSnapshot> PollAsync(int round, Func<BoardSnapshot, bool> condition, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        using var timer = new PeriodicTimer(PollInterval);
        var board = await ReadAsync(round, cancellationToken);
        while (!condition(board) && Stopwatch.GetElapsedTime(started) < phaseTimeout)
        {
            await timer.WaitForNextTickAsync(cancellationToken);
            board = await ReadAsync(round, cancellationToken);
        }

        return board;
    }

    private async Task<BoardSnapshot> ReadAsync(int round, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await using var tunnel = await node.OpenTunnelAsync(Board, cancellationToken);
                await tunnel.WriteAsync(BoardJson.Encode(new BoardRequest { Kind = BoardRequest.Read, Round = round }), cancellationToken);
                await tunnel.CompleteWritingAsync(cancellationToken);
                var reply = new byte[MaxSnapshotBytes + 1];
                var length = 0;
                int read;
                while (length < reply.Length && (read = await tunnel.ReadAsync(reply.AsMemory(length), cancellationToken)) > 0)
                {
                    length += read;
                }

                if (length > MaxSnapshotBytes)
                {
                    throw new InvalidDataException($"the board answered more than {MaxSnapshotBytes} bytes");
                }

                return BoardJson.DecodeSnapshot(reply.AsSpan(0, length)) ?? throw new InvalidDataException("the board answered nothing");
            }
            catch (OverlayTunnelException) when (attempt < MaxSends)
            {
                // Read again over a new route.
            }
        }
    }
}

/// <summary>What a voter saw of the envelopes.</summary>
internal readonly record struct EnvelopeCheck(int Count, bool OursPresent);

/// <summary>A voter's count of the ballots.</summary>
internal sealed record Tally(int[] Counts, int Invalid, bool OursCounted)
{
    public bool SameCountsAs(Tally other) => Counts.AsSpan().SequenceEqual(other.Counts) && Invalid == other.Invalid;
}
