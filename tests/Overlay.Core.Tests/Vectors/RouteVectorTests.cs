using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Overlay.Cells;
using Overlay.Crypto;
using Overlay.Errors;
using Overlay.Identity;
using Overlay.Onion;
using Overlay.Protocol;
using Overlay.Tests.Support;
using static Overlay.Tests.Vectors.VectorFile;

namespace Overlay.Tests.Vectors;

/// <summary>
/// Vectors for routes shorter than the header (so the destination's random padding and the filler
/// are pinned), several cells each way, error cells of both scopes, and every intermediate value
/// (docs/protocol.md section 12). Written by this code with OVERLAY_WRITE_VECTORS=1, checked byte for
/// byte otherwise, and checked independently by tests/Overlay.Reference.Tests.
/// </summary>
public sealed class RouteVectorTests
{
    private const int MaxRelays = 4;
    private const int CellSize = 512;
    private const int SlotSize = 128;
    private const int Slots = MaxRelays + 1;
    private const string RandomLabelPrefix = "overlay/v1 test vectors: ";

    [Theory]
    [InlineData("v1-routes-baseline.json", CellConstruction.Baseline)]
    [InlineData("v1-routes-mac-array.json", CellConstruction.MacArray)]
    public void Short_routes_match_the_published_vectors(string file, CellConstruction construction)
    {
        var parameters = new NetworkParameters { MaxRelays = MaxRelays, CellSize = CellSize, Construction = construction };
        var tunnels = new JsonArray();
        foreach (var scenario in Scenarios())
        {
            tunnels.Add(Run(parameters, scenario));
        }

        VectorFile.MatchOrWrite(file, new JsonObject
        {
            ["network"] = new JsonObject
            {
                ["maxRelays"] = MaxRelays,
                ["cellSize"] = CellSize,
                ["construction"] = construction.ToString(),
                ["maxDeadlineClass"] = (int)parameters.MaxDeadlineClass,
                ["idleTimeoutSeconds"] = (int)parameters.IdleTimeout.TotalSeconds,
            },
            ["onionKeys"] = "hop i of a route (0-based, destination last): X25519 private key SHA-256(\"overlay/v1 test vector onion key i\"), node id SHA-256(\"overlay/v1 test vector node i\"), epoch 7 + i",
            ["random"] = $"per tunnel: AES-256-CTR keystream, key = SHA-256(\"{RandomLabelPrefix}\" || tunnel name), sequence 0, blocks 0, 1, 2, ... consumed in order; 'draws' lists what the origin took",
            ["deadlineClass"] = (int)DeadlineClass.Seconds30,
            ["tunnels"] = tunnels,
        });
    }

    private static IEnumerable<Scenario> Scenarios()
    {
        yield return new Scenario(
            "one relay of four", 1, TunnelMode.Duplex, "echo",
            [Forward(CellType.Data, "first forward cell of a short route"), Forward(CellType.Padding, ""), Forward(CellType.Data, "second forward cell"), Forward(CellType.End, "last forward bytes")],
            [Destination(CellType.Data, "first reply cell"), Destination(CellType.Padding, ""), Destination(CellType.End, "the reply ends here"), Failure(1, TunnelErrorKind.DeadlineExceeded, nextHop: false)]);
        yield return new Scenario(
            "no relays", 0, TunnelMode.Duplex, null,
            [Forward(CellType.Data, "straight to the destination"), Forward(CellType.End, "end")],
            [Destination(CellType.Data, "a partial reply"), Failure(1, TunnelErrorKind.HandlerFailed, nextHop: false)]);
        yield return new Scenario(
            "three relays of four, one way", 3, TunnelMode.OneWay, null,
            [Forward(CellType.Data, "a one-way message"), Forward(CellType.Padding, ""), Forward(CellType.End, "its end")],
            [Destination(CellType.Receipt, ""), Failure(2, TunnelErrorKind.LinkLost, nextHop: true)]);

        static ForwardStep Forward(CellType type, string payload) => new(type, Encoding.UTF8.GetBytes(payload));
        static BackwardStep Destination(CellType type, string payload) => new(0, type, Encoding.UTF8.GetBytes(payload), TunnelErrorKind.None, false);
        static BackwardStep Failure(int hop, TunnelErrorKind kind, bool nextHop) => new(hop, CellType.Error, [], kind, nextHop);
    }

    private static JsonObject Run(NetworkParameters parameters, Scenario scenario)
    {
        var n = scenario.Relays + 1;
        var now = DateTimeOffset.UnixEpoch;
        using var stream = new DeterministicRandom(RandomLabelPrefix + scenario.Name);
        var random = new RecordingRandom(stream);
        var rings = new OnionKeyRing[n];
        var route = new RouteHop[n];
        var onionPrivate = new byte[n][];
        for (var i = 0; i < n; i++)
        {
            onionPrivate[i] = SHA256.HashData(Encoding.UTF8.GetBytes($"overlay/v1 test vector onion key {i}"));
            var key = OnionKey.Import(onionPrivate[i], epoch: 7u + (uint)i, now, now.AddYears(100));
            rings[i] = new OnionKeyRing();
            rings[i].Add(new OnionKeyEpoch(key, new ReplayCache(16)));
            route[i] = new RouteHop(new NodeId(SHA256.HashData(Encoding.UTF8.GetBytes($"overlay/v1 test vector node {i}"))), key.Epoch, key.PublicKey.ToArray());
        }

        var relays = new RelayCellCodec[scenario.Relays];
        DestinationCellCodec? destination = null;
        try
        {
            var builder = new OnionHeaderBuilder(parameters, random);
            var headers = new byte[n][];
            headers[0] = new byte[builder.HeaderSize];
            var originKeys = builder.Build(route, scenario.Mode, DeadlineClass.Seconds30, headers[0], service: scenario.Service);
            using var origin = new OriginCellCodec(parameters, originKeys, random);

            var outcomes = new JsonObject[n];
            for (var i = 0; i < n; i++)
            {
                var next = new byte[builder.HeaderSize];
                using var result = new OnionHeaderProcessor(parameters, rings[i]).Process(headers[i], next);
                if (i < n - 1)
                {
                    Assert.Equal(HeaderOutcome.Relay, result.Outcome);
                    Assert.Equal(route[i + 1].Id, result.NextHop);
                    outcomes[i] = new JsonObject { ["outcome"] = "relay", ["nextHop"] = result.NextHop.ToString() };
                    relays[i] = result.CreateRelayCodec(parameters);
                    headers[i + 1] = next;
                }
                else
                {
                    Assert.Equal((HeaderOutcome.Deliver, scenario.Mode), (result.Outcome, result.Mode));
                    outcomes[i] = new JsonObject { ["outcome"] = "deliver", ["mode"] = (int)result.Mode };
                    destination = result.CreateDestinationCodec(parameters);
                }
            }

            // What the origin drew: one ephemeral key per hop, the destination slot's padding, then
            // (MAC array) the key of the array's padding stream.
            var macArray = parameters.Construction == CellConstruction.MacArray;
            Assert.Equal(n + 1 + (macArray ? 1 : 0), random.Draws.Count);
            var padding = random.Draws[n];
            Assert.Equal((Slots - n) * SlotSize, padding.Length);

            var hopsJson = new JsonArray();
            for (var i = 0; i < n; i++)
            {
                hopsJson.Add(HopJson(i, n, route[i], onionPrivate[i], random.Draws[i], originKeys.Hops[i], headers[i], outcomes[i], padding));
            }

            var beta = headers[n - 1].AsSpan(37, Slots * SlotSize);
            var tunnel = new JsonObject
            {
                ["name"] = scenario.Name,
                ["randomLabel"] = RandomLabelPrefix + scenario.Name,
                ["relays"] = scenario.Relays,
                ["mode"] = (int)scenario.Mode,
                ["service"] = scenario.Service ?? "",
                ["draws"] = new JsonArray([.. random.Draws.Select(d => (JsonNode)Hex(d))]),
                ["hops"] = hopsJson,
                ["destinationPadding"] = Hex(padding),
                ["filler"] = Hex(beta[((Slots - n + 1) * SlotSize)..]),
            };
            if (macArray)
            {
                tunnel["macArrayPaddingKey"] = Hex(random.Draws[n + 1]);
            }

            tunnel["forward"] = ForwardCells(parameters, scenario, originKeys, random, origin, relays, destination!);
            tunnel["backward"] = BackwardCells(scenario, originKeys, origin, relays, destination!);
            return tunnel;
        }
        finally
        {
            foreach (var relay in relays)
            {
                relay?.Dispose();
            }

            destination?.Dispose();
            foreach (var ring in rings)
            {
                ring.Dispose();
            }
        }
    }

    private static JsonObject HopJson(int i, int n, RouteHop hop, byte[] onionPrivate, byte[] ephemeral, HopKeys keys, byte[] header, JsonObject outcome, byte[] padding)
    {
        var alpha = new byte[32];
        Sodium.ScalarMultBase(alpha, ephemeral);
        Assert.Equal(alpha, header[5..37]);
        var shared = new byte[32];
        Assert.True(Sodium.ScalarMult(shared, ephemeral, hop.OnionPublicKey.Span));
        var prk = new byte[32];
        HKDF.Extract(HashAlgorithmName.SHA256, shared, HopKeys.Salt, prk);
        using (var again = HopKeys.Derive(shared))
        {
            Assert.Equal(keys.HeaderMac.ToArray(), again.HeaderMac.ToArray());
        }

        var rho = new byte[(Slots + 1) * SlotSize];
        using (var ctr = new AesCtr(keys.HeaderStream))
        {
            ctr.Keystream(0, rho);
        }

        // What the hop reads after removing its layer: (beta || 0^128) XOR rho.
        var opened = new byte[rho.Length];
        header.AsSpan(37, Slots * SlotSize).CopyTo(opened);
        ByteOps.Xor(opened, rho);
        if (i == n - 1)
        {
            Assert.Equal(padding, opened[SlotSize..((Slots - n + 1) * SlotSize)]);
        }

        var json = new JsonObject
        {
            ["role"] = i < n - 1 ? $"relay {i + 1}" : "destination",
            ["nodeId"] = hop.Id.ToString(),
            ["epoch"] = hop.Epoch,
            ["onionPrivateKey"] = Hex(onionPrivate),
            ["onionPublicKey"] = Hex(hop.OnionPublicKey.Span),
            ["ephemeralPrivateKey"] = Hex(ephemeral),
            ["alpha"] = Hex(alpha),
            ["sharedSecret"] = Hex(shared),
            ["prk"] = Hex(prk),
            ["keys"] = new JsonObject
            {
                ["overlay/v1 header mac"] = Hex(keys.HeaderMac),
                ["overlay/v1 header stream"] = Hex(keys.HeaderStream),
                ["overlay/v1 forward layer"] = Hex(keys.ForwardLayer),
                ["overlay/v1 backward layer"] = Hex(keys.BackwardLayer),
                ["overlay/v1 forward mac"] = Hex(keys.ForwardMac),
                ["overlay/v1 forward seal"] = Hex(keys.ForwardSeal),
                ["overlay/v1 backward seal"] = Hex(keys.BackwardSeal),
                ["overlay/v1 trace"] = Hex(keys.Trace),
                ["overlay/v1 replay tag"] = keys.ReplayTag.ToString("x32", System.Globalization.CultureInfo.InvariantCulture),
            },
            ["headerStream"] = Hex(rho),
            ["header"] = Hex(header),
            ["slot"] = Hex(opened.AsSpan(0, SlotSize)),
        };
        foreach (var (name, value) in outcome)
        {
            json[name] = value?.DeepClone();
        }

        return json;
    }

    private static JsonArray ForwardCells(NetworkParameters parameters, Scenario scenario, OriginTunnelKeys keys, RecordingRandom random, OriginCellCodec origin, RelayCellCodec[] relays, DestinationCellCodec destination)
    {
        var layout = new CellLayout(parameters);
        var cells = new JsonArray();
        var plain = new byte[layout.PlaintextBufferSize];
        for (var q = 0; q < scenario.Forward.Length; q++)
        {
            var (type, payload) = scenario.Forward[q];
            var cell = new byte[CellSize];
            origin.SealForward(type, payload, cell);
            var path = new JsonArray { Step(0, cell) };
            for (var r = 0; r < relays.Length; r++)
            {
                Assert.Equal(TunnelErrorKind.None, relays[r].ProcessForward(cell));
                path.Add(Step(r + 1, cell));
            }

            var opened = destination.OpenForward(cell, plain);
            Assert.Equal((type, payload.Length), (opened.Type, opened.PayloadLength));
            Assert.Equal(payload, plain.AsSpan(OpenedCell.PayloadOffset, opened.PayloadLength).ToArray());
            var json = CellJson(q, type, payload, cell[^CellLayout.TagSize..], path);
            if (q == 0)
            {
                json["layerKeystreams"] = Keystreams(keys, relays.Length, forward: true);
                if (parameters.Construction == CellConstruction.MacArray)
                {
                    // The destination's view of the array: its entry, the padding, the filler.
                    var fillerStart = (Slots - relays.Length) * CellLayout.MacSize;
                    var expectedPadding = new byte[fillerStart - CellLayout.MacSize];
                    using (var ctr = new AesCtr(random.Draws[^1]))
                    {
                        ctr.Keystream(0, expectedPadding);
                    }

                    Assert.Equal(expectedPadding, cell[CellLayout.MacSize..fillerStart]);
                    json["macArrayPadding"] = Hex(cell.AsSpan(CellLayout.MacSize, fillerStart - CellLayout.MacSize));
                    json["macArrayFiller"] = Hex(cell.AsSpan(fillerStart, layout.MacArrayLength - fillerStart));
                }
            }

            cells.Add(json);
        }

        return cells;
    }

    private static JsonArray BackwardCells(Scenario scenario, OriginTunnelKeys keys, OriginCellCodec origin, RelayCellCodec[] relays, DestinationCellCodec destination)
    {
        var cells = new JsonArray();
        var plain = new byte[CellSize];
        for (var k = 0; k < scenario.Backward.Length; k++)
        {
            var step = scenario.Backward[k];
            var sealedBy = step.Hop == 0 ? relays.Length + 1 : step.Hop;
            var cell = new byte[CellSize];
            if (sealedBy == relays.Length + 1)
            {
                if (step.Type == CellType.Error)
                {
                    destination.WriteErrorCell(step.Error, cell);
                }
                else if (step.Type == CellType.Receipt)
                {
                    destination.WriteReceipt(cell);
                }
                else
                {
                    destination.SealBackward(step.Type, step.Payload, cell);
                }
            }
            else
            {
                relays[sealedBy - 1].WriteErrorCell(step.Error, cell, step.NextHop);
            }

            var path = new JsonArray { Step(sealedBy, cell) };
            var tag = cell[^CellLayout.TagSize..];
            for (var r = sealedBy - 2; r >= 0; r--)
            {
                relays[r].ProcessBackward(cell);
                path.Add(Step(r + 1, cell));
            }

            var opened = origin.OpenBackward(cell, plain);
            var payload = step.Type == CellType.Receipt ? Count(destination.ForwardCells) : step.Payload;
            var json = CellJson(k, step.Type, payload, tag, path);
            json["sealedBy"] = sealedBy;
            if (step.Type == CellType.Error)
            {
                var blamed = sealedBy + (step.NextHop ? 1 : 0);
                Assert.Equal((step.Error, blamed, sealedBy), (opened.Error, opened.Hop, opened.ReportedBy));
                json["payload"] = Hex([(byte)step.Error, (byte)(step.NextHop ? 1 : 0)]);
                json["error"] = new JsonObject { ["code"] = (int)step.Error, ["name"] = step.Error.ToString(), ["scope"] = step.NextHop ? 1 : 0, ["reportedBy"] = sealedBy, ["attributedTo"] = blamed };
            }
            else
            {
                Assert.Equal((step.Type, payload.Length), (opened.Type, opened.PayloadLength));
                Assert.Equal(payload, plain.AsSpan(OpenedCell.PayloadOffset, opened.PayloadLength).ToArray());
            }

            if (k == 0)
            {
                json["layerKeystreams"] = Keystreams(keys, relays.Length, forward: false);
            }

            cells.Add(json);
        }

        return cells;
    }

    private static byte[] Count(ulong cells)
    {
        var count = new byte[OpenedCell.ReceiptLength];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(count, cells);
        return count;
    }

    private static JsonObject CellJson(int sequence, CellType type, byte[] payload, byte[] tag, JsonArray path) => new()
    {
        ["sequence"] = sequence,
        ["type"] = (int)type,
        ["payload"] = Hex(payload),
        ["tag"] = Hex(tag),
        ["path"] = path,
    };

    // Hop 0 is the origin: the cell as it leaves each hop, in the order it travels.
    private static JsonObject Step(int hop, byte[] cell) => new() { ["hop"] = hop, ["cell"] = Hex(cell) };

    // Each relay's layer keystream for sequence 0 (relay order), the first cell of a direction.
    private static JsonArray Keystreams(OriginTunnelKeys keys, int relays, bool forward)
    {
        var streams = new JsonArray();
        for (var r = 0; r < relays; r++)
        {
            var keystream = new byte[CellSize];
            using var ctr = new AesCtr(forward ? keys.Hops[r].ForwardLayer : keys.Hops[r].BackwardLayer);
            ctr.Keystream(0, keystream);
            streams.Add(Hex(keystream));
        }

        return streams;
    }

    private sealed record Scenario(string Name, int Relays, TunnelMode Mode, string? Service, ForwardStep[] Forward, BackwardStep[] Backward);

    private readonly record struct ForwardStep(CellType Type, byte[] Payload);

    /// <summary>Hop 0: the destination seals <see cref="Type"/>; otherwise hop <see cref="Hop"/> (1-based) sends an error cell.</summary>
    private readonly record struct BackwardStep(int Hop, CellType Type, byte[] Payload, TunnelErrorKind Error, bool NextHop);
}
