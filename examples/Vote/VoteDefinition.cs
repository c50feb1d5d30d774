using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Overlay.Examples.Vote;

/// <summary>A voter's public identity: a name for the output and the Ed25519 key it signs its participation with.</summary>
internal sealed record VoterIdentity(string Name, byte[] PublicKey);

/// <summary>
/// What is voted on and by whom. Every signature and commitment of the vote is bound to its
/// <see cref="Id"/> and to the round, so nothing from another vote or an aborted round counts.
/// </summary>
internal sealed class VoteDefinition
{
    public VoteDefinition(string question, IReadOnlyList<string> choices, IReadOnlyList<VoterIdentity> voters)
    {
        Question = question;
        Choices = choices;
        Voters = voters;
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Append(hash, "overlay-vote-definition-v1");
        Append(hash, question);
        Append(hash, choices.Count);
        foreach (var choice in choices)
        {
            Append(hash, choice);
        }

        Append(hash, voters.Count);
        foreach (var voter in voters)
        {
            Append(hash, voter.Name);
            hash.AppendData(voter.PublicKey);
        }

        Id = hash.GetHashAndReset();
    }

    public string Question { get; }

    public IReadOnlyList<string> Choices { get; }

    public IReadOnlyList<VoterIdentity> Voters { get; }

    /// <summary>SHA-256 over the question, the choices and the voters' identities, each length-prefixed.</summary>
    public byte[] Id { get; }

    /// <summary>The commitment an envelope carries: SHA-256 over the vote, the round, the choice and a secret nonce.</summary>
    public byte[] Commitment(int round, int choice, byte[] nonce) =>
        Digest("overlay-vote-commitment-v1", round, hash =>
        {
            Append(hash, choice);
            hash.AppendData(nonce);
        });

    /// <summary>What a voter signs with its real identity: that it saw exactly this set of envelopes.</summary>
    public byte[] ParticipationStatement(int round, IEnumerable<byte[]> envelopeKeys) =>
        Digest("overlay-vote-participation-v1", round, hash =>
        {
            foreach (var key in envelopeKeys.Order(ByteOrder.Instance))
            {
                hash.AppendData(key);
            }
        });

    /// <summary>What a ballot's envelope key signs: the choice and the nonce that open its commitment.</summary>
    public byte[] BallotStatement(int round, int choice, byte[] nonce) =>
        Digest("overlay-vote-ballot-v1", round, hash =>
        {
            Append(hash, choice);
            hash.AppendData(nonce);
        });

    private byte[] Digest(string domain, int round, Action<IncrementalHash> rest)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Append(hash, domain);
        hash.AppendData(Id);
        Append(hash, round);
        rest(hash);
        return hash.GetHashAndReset();
    }

    private static void Append(IncrementalHash hash, string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        Append(hash, bytes.Length);
        hash.AppendData(bytes);
    }

    private static void Append(IncrementalHash hash, int value)
    {
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(bytes, value);
        hash.AppendData(bytes);
    }
}

/// <summary>Orders byte strings lexicographically, so every voter hashes a set in the same order.</summary>
internal sealed class ByteOrder : IComparer<byte[]>
{
    public static readonly ByteOrder Instance = new();

    public int Compare(byte[]? x, byte[]? y) => x.AsSpan().SequenceCompareTo(y);
}
