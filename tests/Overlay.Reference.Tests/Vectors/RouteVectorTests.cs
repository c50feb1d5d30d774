using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Overlay.Reference.Spec;
using static Overlay.Reference.Vectors.TunnelVector;

namespace Overlay.Reference.Vectors;

/// <summary>
/// The route vectors (docs/vectors/v1-routes-*.json), recomputed from docs/protocol.md by the
/// reference implementation: every intermediate value, every header, every cell at every hop.
/// </summary>
public sealed class RouteVectorTests
{
    private static readonly string[] Files = ["v1-routes-baseline.json", "v1-routes-mac-array.json"];

    public static TheoryData<string, int> Tunnels()
    {
        var data = new TheoryData<string, int>();
        foreach (var file in Files)
        {
            var count = VectorFiles.Load(file)["tunnels"]!.AsArray().Count;
            for (var i = 0; i < count; i++)
            {
                data.Add(file, i);
            }
        }

        return data;
    }

    [Fact]
    public void The_files_cover_short_routes_both_constructions_and_every_cell_type()
    {
        var relays = new HashSet<int>();
        var types = new HashSet<int>();
        var scopes = new HashSet<int>();
        foreach (var file in Files)
        {
            foreach (var tunnel in VectorFiles.Load(file)["tunnels"]!.AsArray())
            {
                relays.Add((int)tunnel!["relays"]!);
                foreach (var cell in tunnel["forward"]!.AsArray().Concat(tunnel["backward"]!.AsArray()))
                {
                    types.Add((int)cell!["type"]!);
                    if (cell["error"] is { } error)
                    {
                        scopes.Add((int)error["scope"]!);
                    }
                }
            }
        }

        Assert.Contains(0, relays);
        Assert.Contains(1, relays);
        Assert.Equal([Wire.Data, Wire.End, Wire.Error, Wire.Padding, Wire.Receipt], types.Order().Select(t => (byte)t));
        Assert.Equal([0, 1], scopes.Order());
    }

    [Theory]
    [MemberData(nameof(Tunnels))]
    public void Onion_keys_and_randomness_are_as_section_12_says(string file, int index)
    {
        var tunnel = new TunnelVector(VectorFiles.Load(file), index);
        var n = tunnel.Hops.Count;
        Assert.Equal(tunnel.Relays + 1, n);
        for (var i = 0; i < n; i++)
        {
            var hop = tunnel.Hops[i];
            var onionPrivate = SHA256.HashData(Encoding.UTF8.GetBytes($"overlay/v1 test vector onion key {i}"));
            Assert.Equal(Bytes.ToHex(onionPrivate), (string)hop["onionPrivateKey"]!);
            Assert.Equal(Bytes.ToHex(X25519.PublicKey(onionPrivate)), (string)hop["onionPublicKey"]!);
            Assert.Equal(Bytes.ToHex(SHA256.HashData(Encoding.UTF8.GetBytes($"overlay/v1 test vector node {i}"))), (string)hop["nodeId"]!);
            Assert.Equal(7u + (uint)i, (uint)hop["epoch"]!);
        }

        // In order: 32 bytes per hop, the destination slot's padding, then (MAC array) the padding key.
        var random = new VectorRandom(tunnel.Label);
        var draws = tunnel.Json["draws"]!.AsArray().Select(d => (string)d!).ToArray();
        var expected = new List<string>();
        for (var i = 0; i < n; i++)
        {
            expected.Add(Bytes.ToHex(random.Take(32)));
            Assert.Equal(expected[i], (string)tunnel.Hops[i]["ephemeralPrivateKey"]!);
        }

        expected.Add(Bytes.ToHex(random.Take((tunnel.Slots - n) * Wire.SlotSize)));
        Assert.Equal(expected[n], (string)tunnel.Json["destinationPadding"]!);
        if (tunnel.MacArray)
        {
            expected.Add(Bytes.ToHex(random.Take(32)));
            Assert.Equal(expected[n + 1], (string)tunnel.Json["macArrayPaddingKey"]!);
        }

        Assert.Equal(expected, draws);
    }

    [Theory]
    [MemberData(nameof(Tunnels))]
    public void Every_key_of_the_schedule_matches(string file, int index)
    {
        var tunnel = new TunnelVector(VectorFiles.Load(file), index);
        foreach (var hop in tunnel.Hops)
        {
            var ephemeral = Hex(hop, "ephemeralPrivateKey");
            var alpha = X25519.PublicKey(ephemeral);
            Assert.Equal((string)hop["alpha"]!, Bytes.ToHex(alpha));
            var originSide = X25519.Agree(ephemeral, Hex(hop, "onionPublicKey"))!;
            var hopSide = X25519.Agree(Hex(hop, "onionPrivateKey"), alpha)!;
            Assert.Equal(originSide, hopSide);
            Assert.Equal((string)hop["sharedSecret"]!, Bytes.ToHex(originSide));

            var secrets = HopSecrets.Derive(originSide);
            Assert.Equal((string)hop["prk"]!, Bytes.ToHex(secrets.Prk));
            var keys = hop["keys"]!.AsObject();
            Assert.Equal(HopSecrets.Labels.Count, keys.Count);
            foreach (var (label, _) in HopSecrets.Labels)
            {
                Assert.True((string)keys[label]! == Bytes.ToHex(secrets[label]), $"{label} of {hop["role"]}");
            }

            var rho = CounterMode.Keystream(secrets[HopSecrets.HeaderStream], 0, (tunnel.Slots + 1) * Wire.SlotSize);
            Assert.Equal((string)hop["headerStream"]!, Bytes.ToHex(rho));
        }
    }

    [Theory]
    [MemberData(nameof(Tunnels))]
    public void The_header_built_from_the_spec_is_the_vector_s(string file, int index)
    {
        var tunnel = new TunnelVector(VectorFiles.Load(file), index);
        var builder = new OnionHeaderBuilder(tunnel.Slots);
        var header = builder.Build(
            tunnel.Route,
            [.. tunnel.Hops.Select(h => Hex(h, "ephemeralPrivateKey"))],
            Hex(tunnel.Json, "destinationPadding"),
            tunnel.Mode,
            tunnel.Deadline,
            tunnel.Service);
        Assert.Equal(Wire.HeaderSize(tunnel.Slots), header.Length);
        Assert.Equal((string)tunnel.Hops[0]["header"]!, Bytes.ToHex(header));
        Assert.Equal((string)tunnel.Json["filler"]!, Bytes.ToHex(builder.Filler));
        Assert.Equal(tunnel.Relays * Wire.SlotSize, builder.Filler.Length);
    }

    [Theory]
    [MemberData(nameof(Tunnels))]
    public void Each_hop_processes_its_header_as_the_vector_says(string file, int index)
    {
        var tunnel = new TunnelVector(VectorFiles.Load(file), index);
        var n = tunnel.Hops.Count;
        for (var i = 0; i < n; i++)
        {
            var hop = tunnel.Hops[i];
            var header = Hex(hop, "header");
            var processor = tunnel.HopAt(i);
            var result = processor.Process(header);
            Assert.Equal(0, result.Error);
            Assert.Equal((string)hop["slot"]!, Bytes.ToHex(result.Slot));
            Assert.Equal(tunnel.Deadline, result.Deadline);
            if (i < n - 1)
            {
                Assert.True(result.IsRelay);
                Assert.Equal("relay", (string)hop["outcome"]!);
                Assert.Equal((string)hop["nextHop"]!, Bytes.ToHex(result.NextId));
                Assert.Equal((string)tunnel.Hops[i + 1]["header"]!, Bytes.ToHex(result.NextHeader));
            }
            else
            {
                Assert.True(result.IsDeliver);
                Assert.Equal("deliver", (string)hop["outcome"]!);
                Assert.Equal((tunnel.Mode, tunnel.Service), (result.Mode, result.Service));

                // What the destination sees after its slot: the origin's random padding, then the filler
                // as the relays' streams left it; nothing in it says where one ends.
                var b = CounterMode.Apply(result.Secrets![HopSecrets.HeaderStream], 0, Bytes.Concat(header[Wire.BetaOffset..^Wire.MacSize], Bytes.Zeros(Wire.SlotSize)));
                Assert.Equal((string)tunnel.Json["destinationPadding"]!, Bytes.ToHex(b[Wire.SlotSize..((tunnel.Slots - n + 1) * Wire.SlotSize)]));
            }

            // The same header again is a replay; a changed byte anywhere before gamma fails the MAC.
            Assert.Equal(Wire.Replayed, processor.Process(header).Error);
            foreach (var offset in new[] { Wire.AlphaOffset + 3, Wire.BetaOffset, header.Length - Wire.MacSize - 1, header.Length - 1 })
            {
                var changed = header.ToArray();
                changed[offset] ^= 0x04;
                Assert.Equal(Wire.Tampered, tunnel.HopAt(i).Process(changed).Error);
            }
        }
    }

    [Theory]
    [MemberData(nameof(Tunnels))]
    public void Forward_cells_match_at_every_hop(string file, int index)
    {
        var tunnel = new TunnelVector(VectorFiles.Load(file), index);
        var cells = tunnel.Cells();
        var secrets = tunnel.DeriveSecrets();
        foreach (var vector in tunnel.Forward)
        {
            var q = (ulong)vector["sequence"]!;
            var type = (byte)(int)vector["type"]!;
            var payload = Hex(vector, "payload");
            var path = vector["path"]!.AsArray().Select(p => p!.AsObject()).ToArray();
            Assert.Equal(Enumerable.Range(0, tunnel.Relays + 1), path.Select(p => (int)p["hop"]!));

            var cell = cells.SealForward(q, type, payload);
            Assert.Equal((string)path[0]["cell"]!, Bytes.ToHex(cell));
            for (var relay = 1; relay <= tunnel.Relays; relay++)
            {
                var changed = cell.ToArray();
                changed[^1] ^= 1;
                if (tunnel.MacArray)
                {
                    // The next hop catches a changed byte (section 7.3).
                    Assert.Null(cells.RelayForward(relay, q, changed));
                }

                cell = cells.RelayForward(relay, q, cell)!;
                Assert.Equal((string)path[relay]["cell"]!, Bytes.ToHex(cell));
            }

            Assert.Equal((string)vector["tag"]!, Bytes.ToHex(cell.AsSpan(cell.Length - Wire.TagSize)));
            var opened = cells.DestinationOpenForward(q, cell);
            Assert.NotNull(opened);
            Assert.Equal(type, opened.Value.Type);
            Assert.Equal(payload, opened.Value.Payload);
            if (type == Wire.Padding)
            {
                Assert.Empty(payload);
            }

            var tampered = cell.ToArray();
            tampered[tunnel.MacArray ? 20 : 0] ^= 1;
            Assert.Null(cells.DestinationOpenForward(q, tampered));
            Assert.Null(cells.DestinationOpenForward(q + 1, cell));

            if (q == 0)
            {
                CheckKeystreams(vector, secrets, HopSecrets.ForwardLayer, tunnel.CellSize);
                if (tunnel.MacArray)
                {
                    Assert.Equal((string)vector["macArrayPadding"]!, Bytes.ToHex(cells.MacArrayPadding(0)));
                    Assert.Equal((string)vector["macArrayFiller"]!, Bytes.ToHex(cells.MacArrayFiller(0)));
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(Tunnels))]
    public void Backward_cells_match_at_every_hop_and_the_origin_names_the_right_hop(string file, int index)
    {
        var tunnel = new TunnelVector(VectorFiles.Load(file), index);
        var cells = tunnel.Cells();
        var secrets = tunnel.DeriveSecrets();
        var forwardCells = tunnel.Forward.Count();
        var destination = tunnel.Relays + 1;
        foreach (var vector in tunnel.Backward)
        {
            var k = (ulong)vector["sequence"]!;
            var type = (byte)(int)vector["type"]!;
            var payload = Hex(vector, "payload");
            var sealedBy = (int)vector["sealedBy"]!;
            var path = vector["path"]!.AsArray().Select(p => p!.AsObject()).ToArray();
            Assert.Equal(Enumerable.Range(1, sealedBy).Reverse(), path.Select(p => (int)p["hop"]!));

            if (type == Wire.Receipt)
            {
                // Section 7.6: from the destination of a one-way tunnel, the count of forward cells it accepted.
                Assert.Equal((2, destination), (tunnel.Mode, sealedBy));
                Assert.Equal((ulong)forwardCells, BinaryPrimitives.ReadUInt64BigEndian(payload));
            }

            if (type == Wire.Error)
            {
                var error = vector["error"]!;
                Assert.Equal([(byte)(int)error["code"]!, (byte)(int)error["scope"]!], payload);
            }

            var cell = cells.SealBackward(sealedBy, k, type, payload);
            Assert.Equal((string)path[0]["cell"]!, Bytes.ToHex(cell));
            Assert.Equal((string)vector["tag"]!, Bytes.ToHex(cell.AsSpan(cell.Length - Wire.TagSize)));
            for (var step = 1; step < path.Length; step++)
            {
                cell = cells.RelayBackward(sealedBy - step, k, cell);
                Assert.Equal((string)path[step]["cell"]!, Bytes.ToHex(cell));
            }

            var reading = cells.OriginOpenBackward(k, cell);
            Assert.Equal(0, reading.Violation);
            Assert.Equal((type, sealedBy), (reading.Type, reading.ReportedBy));
            Assert.Equal(payload, reading.Payload);
            if (vector["error"] is { } expected)
            {
                Assert.Equal(((int)expected["code"]!, (int)expected["reportedBy"]!, (int)expected["attributedTo"]!), (reading.ErrorCode, reading.ReportedBy, reading.AttributedTo));
            }

            var tampered = cell.ToArray();
            tampered[7] ^= 1;
            Assert.Equal(Wire.Tampered, cells.OriginOpenBackward(k, tampered).Violation);

            if (k == 0)
            {
                CheckKeystreams(vector, secrets, HopSecrets.BackwardLayer, tunnel.CellSize);
            }
        }
    }

    // Each relay's layer keystream for sequence 0, relays in route order.
    private static void CheckKeystreams(JsonObject vector, IReadOnlyList<HopSecrets> secrets, string label, int cellSize)
    {
        var streams = vector["layerKeystreams"]!.AsArray().Select(s => (string)s!).ToArray();
        Assert.Equal(secrets.Count - 1, streams.Length);
        for (var relay = 0; relay < streams.Length; relay++)
        {
            Assert.Equal(streams[relay], Bytes.ToHex(CounterMode.Keystream(secrets[relay][label], 0, cellSize)));
        }
    }
}
