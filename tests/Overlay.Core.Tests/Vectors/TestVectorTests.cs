using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Overlay.Cells;
using Overlay.Errors;
using Overlay.Identity;
using Overlay.Onion;
using Overlay.Protocol;
using Overlay.Tests.Support;

namespace Overlay.Tests.Vectors;

/// <summary>
/// The wire-format test vectors of docs/protocol.md: fixed keys and a fixed random stream in,
/// exact bytes out. The JSON files under docs/vectors are the reference; set
/// OVERLAY_WRITE_VECTORS=1 to rewrite them after an intended format change (and say so in the docs).
/// </summary>
public sealed class TestVectorTests
{
    private const string RandomLabel = "overlay/v1 test vectors";

    [Theory]
    [InlineData("v1-baseline.json", CellConstruction.Baseline)]
    [InlineData("v1-mac-array.json", CellConstruction.MacArray)]
    public void Wire_bytes_match_the_published_vectors(string file, CellConstruction construction)
    {
        VectorFile.MatchOrWrite(file, Compute(construction));
    }

    private static JsonObject Compute(CellConstruction construction)
    {
        var parameters = new NetworkParameters { MaxRelays = 2, CellSize = 512, Construction = construction };
        using var random = new DeterministicRandom(RandomLabel);
        var now = DateTimeOffset.UnixEpoch;
        var rings = new OnionKeyRing[3];
        var hops = new RouteHop[3];
        var hopsJson = new JsonArray();
        for (var i = 0; i < 3; i++)
        {
            var privateKey = SHA256.HashData(Encoding.UTF8.GetBytes($"overlay/v1 test vector onion key {i}"));
            var id = new NodeId(SHA256.HashData(Encoding.UTF8.GetBytes($"overlay/v1 test vector node {i}")));
            var key = OnionKey.Import(privateKey, epoch: 7u + (uint)i, now, now.AddYears(100));
            rings[i] = new OnionKeyRing();
            rings[i].Add(new OnionKeyEpoch(key, new ReplayCache(16)));
            hops[i] = new RouteHop(id, key.Epoch, key.PublicKey.ToArray());
            hopsJson.Add(new JsonObject
            {
                ["role"] = i < 2 ? $"relay {i + 1}" : "destination",
                ["nodeId"] = id.ToString(),
                ["epoch"] = key.Epoch,
                ["onionPrivateKey"] = Hex(privateKey),
                ["onionPublicKey"] = Hex(key.PublicKey),
            });
        }

        try
        {
            var builder = new OnionHeaderBuilder(parameters, random);
            var header = new byte[builder.HeaderSize];
            var next = new byte[header.Length];
            using var origin = new OriginCellCodec(parameters, builder.Build(hops, TunnelMode.Duplex, DeadlineClass.Seconds30, header), random);

            var headers = new JsonArray();
            var relays = new RelayCellCodec[2];
            DestinationCellCodec? destination = null;
            for (var i = 0; i < 3; i++)
            {
                headers.Add(Hex(header));
                using var result = new OnionHeaderProcessor(parameters, rings[i]).Process(header, next);
                if (i < 2)
                {
                    Assert.Equal(HeaderOutcome.Relay, result.Outcome);
                    relays[i] = result.CreateRelayCodec(parameters);
                    (header, next) = (next, header);
                }
                else
                {
                    Assert.Equal(HeaderOutcome.Deliver, result.Outcome);
                    destination = result.CreateDestinationCodec(parameters);
                }
            }

            var cell = new byte[parameters.CellSize];
            var plain = new byte[cell.Length];
            var request = Encoding.UTF8.GetBytes("hello, overlay");
            var forward = new JsonArray();
            origin.SealForward(CellType.End, request, cell);
            forward.Add(Hex(cell));
            foreach (var relay in relays)
            {
                Assert.Equal(TunnelErrorKind.None, relay.ProcessForward(cell));
                forward.Add(Hex(cell));
            }

            var opened = destination!.OpenForward(cell, plain);
            Assert.Equal(CellType.End, opened.Type);
            Assert.Equal(request, plain.AsSpan(OpenedCell.PayloadOffset, opened.PayloadLength).ToArray());

            var reply = Encoding.UTF8.GetBytes("hello, origin");
            var backward = new JsonArray();
            destination.SealBackward(CellType.End, reply, cell);
            backward.Add(Hex(cell));
            relays[1].ProcessBackward(cell);
            backward.Add(Hex(cell));
            relays[0].ProcessBackward(cell);
            backward.Add(Hex(cell));
            var back = origin.OpenBackward(cell, plain);
            Assert.Equal(CellType.End, back.Type);
            Assert.Equal(reply, plain.AsSpan(OpenedCell.PayloadOffset, back.PayloadLength).ToArray());

            // Relay 2 reports that its next hop is unreachable; relay 1 adds its layer; the origin names hop 3.
            var error = new JsonArray();
            relays[1].WriteErrorCell(TunnelErrorKind.NextHopUnreachable, cell, nextHop: true);
            error.Add(Hex(cell));
            relays[0].ProcessBackward(cell);
            error.Add(Hex(cell));
            var failure = origin.OpenBackward(cell, plain);
            Assert.Equal((TunnelErrorKind.NextHopUnreachable, 3), (failure.Error, failure.Hop));

            foreach (var relay in relays)
            {
                relay.Dispose();
            }

            destination.Dispose();
            return new JsonObject
            {
                ["network"] = new JsonObject { ["maxRelays"] = parameters.MaxRelays, ["cellSize"] = parameters.CellSize, ["construction"] = construction.ToString() },
                ["random"] = $"AES-256-CTR keystream, key = SHA-256(\"{RandomLabel}\"), sequence 0, blocks 0, 1, 2, ... consumed in order",
                ["mode"] = nameof(TunnelMode.Duplex),
                ["deadlineClass"] = (int)DeadlineClass.Seconds30,
                ["hops"] = hopsJson,
                ["headerAtHop"] = headers,
                ["requestPayload"] = Hex(request),
                ["forwardCellAtHop"] = forward,
                ["replyPayload"] = Hex(reply),
                ["backwardCellFromDestinationThenAfterRelay2ThenAfterRelay1"] = backward,
                ["errorCellFromRelay2ThenAfterRelay1"] = error,
            };
        }
        finally
        {
            foreach (var ring in rings)
            {
                ring.Dispose();
            }
        }
    }

    private static string Hex(ReadOnlySpan<byte> bytes) => VectorFile.Hex(bytes);
}
