using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Overlay.Reference.Spec;

namespace Overlay.Reference.Vectors;

/// <summary>
/// The reply-block vector (docs/vectors/v1-reply-block.json), rebuilt from docs/protocol.md 7.8 and 12 alone:
/// the block's bytes, the header at every hop of the reply route, the reply cell as the holder seals it and
/// after each relay, the maker's receipt as it sends it and after each relay, opened by the holder.
/// </summary>
public sealed class ReplyBlockVectorTests
{
    private const string RandomLabel = "overlay/v1 test vectors: reply block";

    [Fact]
    public void The_block_the_reply_and_the_receipt_follow_from_the_inputs()
    {
        var vector = VectorFiles.Load("v1-reply-block.json");
        var network = vector["network"]!;
        var slots = (int)network["maxRelays"]! + 1;
        var cellSize = (int)network["cellSize"]!;
        Assert.Equal("Baseline", (string)network["construction"]!);
        var deadline = (byte)(int)vector["deadlineClass"]!;
        var expiresAt = (long)vector["expiresAt"]!;
        var n = slots; // two relays, then the maker
        var headers = Strings(vector, "headers");
        Assert.Equal(n, headers.Length);

        // Section 12: the stream gives the reply id, then one ephemeral key per hop; a full route has no padding.
        var random = new VectorRandom(RandomLabel);
        var replyId = random.Take(16);
        Assert.Equal((string)vector["replyId"]!, Bytes.ToHex(replyId));
        var route = new RouteHop[n];
        var onionPrivate = new byte[n][];
        var ephemeral = new byte[n][];
        for (var i = 0; i < n; i++)
        {
            onionPrivate[i] = SHA256.HashData(Encoding.UTF8.GetBytes($"overlay/v1 test vector onion key {i}"));
            route[i] = new RouteHop(SHA256.HashData(Encoding.UTF8.GetBytes($"overlay/v1 test vector node {i}")), 7u + (uint)i, X25519.PublicKey(onionPrivate[i]));
            ephemeral[i] = random.Take(32);
        }

        Assert.Equal([Bytes.ToHex(replyId), .. ephemeral.Select(e => Bytes.ToHex(e))], Strings(vector, "draws"));

        // Section 6.1, deliver column with mode 3: no service, the reply id at 36..52, the rest zero.
        var slot = OnionHeaderBuilder.DeliverSlot(mode: 3, deadline, service: "");
        replyId.CopyTo(slot, 36);
        var header = new OnionHeaderBuilder(slots).Build(route, ephemeral, [], slot, deadline);
        var secrets = new HopSecrets[n];
        for (var i = 0; i < n; i++)
        {
            Assert.Equal(headers[i], Bytes.ToHex(header));
            var result = new HeaderHop(slots, maxDeadlineClass: 7, new Dictionary<uint, byte[]> { [route[i].Epoch] = onionPrivate[i] }).Process(header);
            Assert.Equal(0, result.Error);
            Assert.Equal(i < n - 1, result.IsRelay);
            secrets[i] = result.Secrets!;
            header = result.NextHeader!;
        }

        var maker = secrets[^1];
        Assert.Equal((3, Bytes.ToHex(replyId)), (new HeaderHop(slots, 7, new Dictionary<uint, byte[]> { [route[^1].Epoch] = onionPrivate[^1] })
            .Process(Bytes.FromHex(headers[^1])) is var delivered ? delivered.Mode : 0, Bytes.ToHex(delivered.ReplyId)));

        // Section 7.8: version 1, the first hop's id, the expiry, the maker's forward and backward seal keys, the header.
        var block = Bytes.Concat([1], route[0].NodeId, Bytes.UInt64((ulong)expiresAt), maker[HopSecrets.ForwardSeal], maker[HopSecrets.BackwardSeal],
            Bytes.FromHex(headers[0]));
        Assert.Equal((string)vector["block"]!, Bytes.ToHex(block));

        // The holder seals under the block's seal key (no layers); each relay XORs CTR(forward layer, q).
        var reply = vector["reply"]!;
        var q = (ulong)(int)reply["sequence"]!;
        var payload = Bytes.FromHex((string)reply["payload"]!);
        var forward = Strings(reply.AsObject(), "path");
        var cell = InnerCell.Seal(block[41..73], q, (byte)(int)reply["type"]!, payload, cellSize);
        Assert.Equal(forward[0], Bytes.ToHex(cell));
        for (var relay = 0; relay < n - 1; relay++)
        {
            cell = CounterMode.Apply(secrets[relay][HopSecrets.ForwardLayer], q, cell);
            Assert.Equal(forward[relay + 1], Bytes.ToHex(cell));
        }

        // The maker removes every relay's layer and opens under its forward seal key.
        for (var relay = 0; relay < n - 1; relay++)
        {
            cell = CounterMode.Apply(secrets[relay][HopSecrets.ForwardLayer], q, cell);
        }

        Assert.Equal((Wire.End, Bytes.ToHex(payload)), InnerCell.Open(maker[HopSecrets.ForwardSeal], q, cell) is { } opened ? (opened.Type, Bytes.ToHex(opened.Payload)) : default);

        // The receipt: sealed under the maker's backward seal key with every relay's backward layer already on;
        // each relay's own XOR takes its layer off, and the holder opens a bare cell under the receipt key.
        var receipt = vector["receipt"]!;
        var k = (ulong)(int)receipt["sequence"]!;
        var backward = Strings(receipt.AsObject(), "path");
        cell = InnerCell.Seal(maker[HopSecrets.BackwardSeal], k, (byte)(int)receipt["type"]!, Bytes.UInt64((ulong)(int)receipt["count"]!), cellSize);
        for (var relay = 0; relay < n - 1; relay++)
        {
            cell = CounterMode.Apply(secrets[relay][HopSecrets.BackwardLayer], k, cell);
        }

        for (var step = 0; step < n; step++)
        {
            Assert.Equal(backward[step], Bytes.ToHex(cell));
            cell = step < n - 1 ? CounterMode.Apply(secrets[n - 2 - step][HopSecrets.BackwardLayer], k, cell) : cell;
        }

        var confirmed = InnerCell.Open(block[73..105], k, cell);
        Assert.NotNull(confirmed);
        Assert.Equal(((byte)5, 1UL), (confirmed!.Value.Type, (ulong)System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(confirmed.Value.Payload)));
    }

    private static string[] Strings(JsonObject vector, string name) => [.. vector[name]!.AsArray().Select(s => (string)s!)];
}
