using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Overlay.Cells;
using Overlay.Identity;
using Overlay.Onion;
using Overlay.Protocol;
using Overlay.Replies;
using Overlay.Tests.Support;
using static Overlay.Tests.Vectors.VectorFile;

namespace Overlay.Tests.Vectors;

/// <summary>
/// The reply-block vector (docs/protocol.md §7.8, §12): a block over two relays to its maker, the encoded
/// block, one reply cell as the holder seals it and after each relay, and the maker's receipt as it sends it
/// and after each relay. Written by this code with OVERLAY_WRITE_VECTORS=1, checked byte for byte otherwise,
/// and recomputed from the document by tests/Overlay.Reference.Tests.
/// </summary>
public sealed class ReplyBlockVectorTests
{
    private const string File = "v1-reply-block.json";
    private const int MaxRelays = 2;
    private const int CellSize = 512;
    private const string RandomLabel = "overlay/v1 test vectors: reply block";
    private const long ExpiresAt = 2_000_000_000;
    private static readonly byte[] Reply = Encoding.UTF8.GetBytes("the answer, over another route");

    [Fact]
    public void A_reply_over_a_block_matches_the_published_vector()
    {
        var parameters = new NetworkParameters { MaxRelays = MaxRelays, CellSize = CellSize, Construction = CellConstruction.Baseline };
        const int n = MaxRelays + 1;
        var now = DateTimeOffset.UnixEpoch;
        var rings = new OnionKeyRing[n];
        var route = new RouteHop[n];
        for (var i = 0; i < n; i++)
        {
            var key = OnionKey.Import(SHA256.HashData(Encoding.UTF8.GetBytes($"overlay/v1 test vector onion key {i}")), epoch: 7u + (uint)i, now, now.AddYears(100));
            rings[i] = new OnionKeyRing();
            rings[i].Add(new OnionKeyEpoch(key, new ReplayCache(16)));
            route[i] = new RouteHop(new NodeId(SHA256.HashData(Encoding.UTF8.GetBytes($"overlay/v1 test vector node {i}"))), key.Epoch, key.PublicKey.ToArray());
        }

        using var stream = new DeterministicRandom(RandomLabel);
        var random = new RecordingRandom(stream);
        var builder = new OnionHeaderBuilder(parameters, random);
        using var made = ReplyBlocks.Create(builder, route, DeadlineClass.Seconds30, DateTimeOffset.FromUnixTimeSeconds(ExpiresAt), out var secret);
        using var owned = secret;
        var encoded = made.Encode();

        // The holder reads the block and seals one End cell; each relay adds its layer; the maker opens it.
        Assert.Equal(Errors.TunnelErrorKind.None, ReplyBlock.TryParse(encoded, parameters, now, out var parsed));
        using var block = parsed!;
        using var holder = block.CreateCodec(parameters, now);
        var cell = new byte[CellSize];
        holder.SealForward(CellType.End, Reply, cell);
        var forwardPath = new JsonArray { Hex(cell) };
        var headers = new JsonArray();
        var header = block.Header.ToArray();
        var relays = new List<RelayCellCodec>();
        DestinationCellCodec? maker = null;
        try
        {
            for (var i = 0; i < n; i++)
            {
                headers.Add(Hex(header));
                var next = new byte[header.Length];
                using var result = new OnionHeaderProcessor(parameters, rings[i]).Process(header, next);
                if (i < n - 1)
                {
                    Assert.Equal(HeaderOutcome.Relay, result.Outcome);
                    relays.Add(result.CreateRelayCodec(parameters));
                    header = next;
                }
                else
                {
                    Assert.Equal((HeaderOutcome.Deliver, TunnelMode.ReplyBlock), (result.Outcome, result.Mode));
                    Assert.True(result.ReplyId.Span.SequenceEqual(secret.ReplyId.Span));
                    maker = result.CreateDestinationCodec(parameters, secret);
                }
            }

            foreach (var relay in relays)
            {
                Assert.Equal(Errors.TunnelErrorKind.None, relay.ProcessForward(cell));
                forwardPath.Add(Hex(cell));
            }

            var plaintext = new byte[maker!.Layout.PlaintextBufferSize];
            var opened = maker.OpenForward(cell, plaintext);
            Assert.Equal(CellType.End, opened.Type);
            Assert.Equal(Reply, plaintext.AsSpan(OpenedCell.PayloadOffset, opened.PayloadLength).ToArray());

            // Backward: the maker's receipt, every relay's layer put on in advance; the relays take theirs off.
            var receipt = new byte[CellSize];
            maker.WriteReceipt(receipt);
            var backwardPath = new JsonArray { Hex(receipt) };
            for (var i = relays.Count - 1; i >= 0; i--)
            {
                relays[i].ProcessBackward(receipt);
                backwardPath.Add(Hex(receipt));
            }

            var confirmed = holder.OpenBackward(receipt, plaintext);
            Assert.Equal(CellType.Receipt, confirmed.Type);
            Assert.Equal(1UL, BinaryPrimitives.ReadUInt64BigEndian(plaintext.AsSpan(OpenedCell.PayloadOffset)));

            MatchOrWrite(File, new JsonObject
            {
                ["network"] = new JsonObject { ["maxRelays"] = MaxRelays, ["cellSize"] = CellSize, ["construction"] = "Baseline" },
                ["onionKeys"] = "hop i of the reply route (0-based, the maker last): X25519 private key SHA-256(\"overlay/v1 test vector onion key i\"), node id SHA-256(\"overlay/v1 test vector node i\"), epoch 7 + i",
                ["random"] = $"AES-256-CTR keystream, key = SHA-256(\"{RandomLabel}\"), sequence 0, blocks 0, 1, 2, ... consumed in order: the reply id, then one ephemeral private key per hop in route order",
                ["deadlineClass"] = (int)DeadlineClass.Seconds30,
                ["expiresAt"] = ExpiresAt,
                ["draws"] = new JsonArray([.. random.Draws.Where(d => d.Length > 0).Select(d => (JsonNode)Hex(d))]),
                ["replyId"] = Hex(secret.ReplyId.Span),
                ["block"] = Hex(encoded),
                ["headers"] = headers,
                ["reply"] = new JsonObject { ["sequence"] = 0, ["type"] = (int)CellType.End, ["payload"] = Hex(Reply), ["path"] = forwardPath },
                ["receipt"] = new JsonObject { ["sequence"] = 0, ["type"] = (int)CellType.Receipt, ["count"] = 1, ["path"] = backwardPath },
            });
        }
        finally
        {
            relays.ForEach(r => r.Dispose());
            maker?.Dispose();
            foreach (var ring in rings)
            {
                ring.Dispose();
            }
        }
    }
}
