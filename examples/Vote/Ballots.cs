using System.Security.Cryptography;

namespace Overlay.Examples.Vote;

/// <summary>The check everyone makes of a ballot: signed by its envelope's key, and opening that envelope's commitment.</summary>
internal static class Ballots
{
    public static bool Opens(VoteDefinition vote, int round, EnvelopePost envelope, int choice, byte[] nonce, byte[] signature) =>
        choice >= 0 && choice < vote.Choices.Count
        && nonce.Length == 32
        && CryptographicOperations.FixedTimeEquals(vote.Commitment(round, choice, nonce), envelope.Commitment)
        && Signatures.Verify(envelope.Key, vote.BallotStatement(round, choice, nonce), signature);
}
