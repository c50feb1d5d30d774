using System.Text.Json;
using System.Text.Json.Serialization;

namespace Overlay.Examples.Vote;

/// <summary>What a voter asks of the bulletin board; byte fields travel as base64.</summary>
internal sealed record BoardRequest
{
    public const string Envelope = "envelope";
    public const string Participation = "participation";
    public const string Ballot = "ballot";
    public const string Read = "read";

    /// <summary>At most this many bytes of request are read; a larger one is dropped.</summary>
    public const int MaxBytes = 4096;

    public required string Kind { get; init; }

    public required int Round { get; init; }

    /// <summary>An envelope's public key (envelope, ballot).</summary>
    public byte[]? Key { get; init; }

    /// <summary>An envelope's commitment.</summary>
    public byte[]? Commitment { get; init; }

    /// <summary>The voter's name (participation).</summary>
    public string? Voter { get; init; }

    /// <summary>The voter's (participation) or the envelope key's (ballot) Ed25519 signature.</summary>
    public byte[]? Signature { get; init; }

    /// <summary>The ballot's choice, an index into the vote's choices.</summary>
    public int Choice { get; init; }

    /// <summary>The nonce that opens the envelope's commitment (ballot).</summary>
    public byte[]? Nonce { get; init; }
}

/// <summary>An envelope as the board publishes it.</summary>
internal sealed record EnvelopePost(byte[] Key, byte[] Commitment);

/// <summary>A voter's signed participation as the board publishes it.</summary>
internal sealed record ParticipationPost(string Voter, byte[] Signature);

/// <summary>A ballot as the board publishes it.</summary>
internal sealed record BallotPost(byte[] Key, int Choice, byte[] Nonce, byte[] Signature);

/// <summary>The board's answer to a ballot, sent back over the reply block the ballot carried.</summary>
internal sealed record BoardReceipt(int Round, byte[] Key, bool Published);

/// <summary>Everything the board holds for one round: what every voter checks and tallies.</summary>
internal sealed record BoardSnapshot(int Round, IReadOnlyList<EnvelopePost> Envelopes, IReadOnlyList<ParticipationPost> Participations, IReadOnlyList<BallotPost> Ballots);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(BoardRequest))]
[JsonSerializable(typeof(BoardSnapshot))]
[JsonSerializable(typeof(BoardReceipt))]
internal sealed partial class BoardJson : JsonSerializerContext
{
    public static byte[] Encode(BoardRequest request) => JsonSerializer.SerializeToUtf8Bytes(request, Default.BoardRequest);

    public static byte[] Encode(BoardSnapshot snapshot) => JsonSerializer.SerializeToUtf8Bytes(snapshot, Default.BoardSnapshot);

    public static byte[] Encode(BoardReceipt receipt) => JsonSerializer.SerializeToUtf8Bytes(receipt, Default.BoardReceipt);

    public static BoardReceipt? DecodeReceipt(ReadOnlySpan<byte> bytes) => JsonSerializer.Deserialize(bytes, Default.BoardReceipt);

    public static BoardRequest? DecodeRequest(ReadOnlySpan<byte> bytes) => JsonSerializer.Deserialize(bytes, Default.BoardRequest);

    public static BoardSnapshot? DecodeSnapshot(ReadOnlySpan<byte> bytes) => JsonSerializer.Deserialize(bytes, Default.BoardSnapshot);
}
