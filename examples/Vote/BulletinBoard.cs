using Overlay.Client;
using Overlay.Protocol.Control.V1;

namespace Overlay.Examples.Vote;

/// <summary>
/// The vote's bulletin board: a named service on one node of the overlay, reached through tunnels
/// like any service, that publishes what it receives. It checks what it can (sizes, signatures, that
/// a ballot opens its envelope's commitment) so that garbage is not published, but the voters trust
/// none of it: each one re-checks everything it reads. A resent envelope or ballot changes nothing.
/// </summary>
internal sealed class BulletinBoard(VoteDefinition vote)
{
    public const string Service = "vote-board";

    // Bounds on what strangers can make the board keep: envelopes per round and rounds kept.
    private const int MaxRounds = 8;
    private const int MaxConcurrentRequests = 64;

    private readonly Lock _lock = new();
    private readonly SortedDictionary<int, BoardRound> _rounds = [];
    private readonly int _maxEnvelopes = 4 * vote.Voters.Count;

    /// <summary>
    /// Serves the board's tunnels from <paramref name="listener"/> until <paramref name="cancellationToken"/> ends it;
    /// receipts for ballots go back over their reply blocks through <paramref name="node"/>.
    /// </summary>
    public async Task ServeAsync(TunnelListener listener, OverlayClient node, CancellationToken cancellationToken)
    {
        using var slots = new SemaphoreSlim(MaxConcurrentRequests);
        var running = new List<Task>();
        try
        {
            await foreach (var tunnel in listener.WithCancellation(cancellationToken))
            {
                await slots.WaitAsync(cancellationToken);
                running.RemoveAll(task => task.IsCompleted);
                running.Add(HandleAsync(tunnel, node, slots, cancellationToken));
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The vote is over.
        }
        finally
        {
            await Task.WhenAll(running);
        }
    }

    /// <summary>What the board holds for <paramref name="round"/>.</summary>
    public BoardSnapshot Snapshot(int round)
    {
        lock (_lock)
        {
            return _rounds.TryGetValue(round, out var state)
                ? new BoardSnapshot(round, [.. state.Envelopes.Values], [.. state.Participations.Values], [.. state.Ballots.Values])
                : new BoardSnapshot(round, [], [], []);
        }
    }

    private async Task HandleAsync(TunnelStream tunnel, OverlayClient node, SemaphoreSlim slots, CancellationToken cancellationToken)
    {
        try
        {
            byte[]? receipt = null;
            ReadOnlyMemory<byte> replyBlock;
            await using (tunnel)
            {
                var request = await ReadRequestAsync(tunnel, cancellationToken);
                var reply = request is null ? null : Handle(request);
                if (reply is not null && tunnel.Mode == TunnelMode.Duplex)
                {
                    await tunnel.WriteAsync(reply, cancellationToken);
                }

                // Ends the reply, or for a one-way message lets the node confirm its delivery.
                await tunnel.CompleteWritingAsync(cancellationToken);
                replyBlock = tunnel.ReplyBlock;
                if (request is { Kind: BoardRequest.Ballot, Key: { } key } && !replyBlock.IsEmpty)
                {
                    receipt = BoardJson.Encode(new BoardReceipt(request.Round, key, IsPublished(request.Round, key)));
                }
            }

            if (receipt is not null)
            {
                // The voter's node made the block: the receipt reaches it over a route it chose, the board never learns where.
                await node.SendReplyAsync(replyBlock, receipt, cancellationToken);
            }
        }
        catch (OverlayException)
        {
            // The tunnel failed on its way (a relay went away, the origin gave up): the voter sees it and sends again.
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The vote is over.
        }
        finally
        {
            slots.Release();
        }
    }

    private bool IsPublished(int round, byte[] key)
    {
        lock (_lock)
        {
            return _rounds.TryGetValue(round, out var state) && state.Ballots.ContainsKey(Convert.ToHexString(key));
        }
    }

    // The whole request, or null when it is larger than any request of the vote or is not one.
    private static async Task<BoardRequest?> ReadRequestAsync(TunnelStream tunnel, CancellationToken cancellationToken)
    {
        var buffer = new byte[BoardRequest.MaxBytes + 1];
        var length = 0;
        int read;
        while (length < buffer.Length && (read = await tunnel.ReadAsync(buffer.AsMemory(length), cancellationToken)) > 0)
        {
            length += read;
        }

        if (length > BoardRequest.MaxBytes)
        {
            return null;
        }

        try
        {
            return BoardJson.DecodeRequest(buffer.AsSpan(0, length));
        }
        catch (System.Text.Json.JsonException)
        {
            return null;
        }
    }

    // Publishes what checks out; answers a read with the round's snapshot.
    private byte[]? Handle(BoardRequest request)
    {
        if (request.Kind == BoardRequest.Read)
        {
            return BoardJson.Encode(Snapshot(request.Round));
        }

        lock (_lock)
        {
            var round = RoundOf(request.Round);
            if (round is null)
            {
                return null;
            }

            switch (request.Kind)
            {
                case BoardRequest.Envelope when request is { Key.Length: Signatures.PublicKeyBytes, Commitment.Length: 32 }
                    && round.Envelopes.Count < _maxEnvelopes:
                    round.Envelopes.TryAdd(Convert.ToHexString(request.Key), new EnvelopePost(request.Key, request.Commitment));
                    break;
                case BoardRequest.Participation when request is { Voter: { } name, Signature: { } signature }
                    && vote.Voters.FirstOrDefault(v => v.Name == name) is { } voter
                    && Signatures.Verify(voter.PublicKey, vote.ParticipationStatement(request.Round, round.Envelopes.Values.Select(e => e.Key)), signature):
                    round.Participations[name] = new ParticipationPost(name, signature);
                    break;
                case BoardRequest.Ballot when request is { Key: { } key, Nonce.Length: 32, Signature: { } signature }
                    && round.Envelopes.TryGetValue(Convert.ToHexString(key), out var envelope)
                    && Ballots.Opens(vote, request.Round, envelope, request.Choice, request.Nonce, signature):
                    round.Ballots.TryAdd(Convert.ToHexString(key), new BallotPost(key, request.Choice, request.Nonce, signature));
                    break;
            }
        }

        return null;
    }

    private BoardRound? RoundOf(int round)
    {
        if (_rounds.TryGetValue(round, out var state))
        {
            return state;
        }

        if (round < 1 || (_rounds.Count >= MaxRounds && round < _rounds.Keys.First()))
        {
            return null;
        }

        if (_rounds.Count >= MaxRounds)
        {
            _rounds.Remove(_rounds.Keys.First());
        }

        return _rounds[round] = new BoardRound();
    }

    private sealed class BoardRound
    {
        public Dictionary<string, EnvelopePost> Envelopes { get; } = new(StringComparer.Ordinal);

        public Dictionary<string, ParticipationPost> Participations { get; } = new(StringComparer.Ordinal);

        public Dictionary<string, BallotPost> Ballots { get; } = new(StringComparer.Ordinal);
    }
}
