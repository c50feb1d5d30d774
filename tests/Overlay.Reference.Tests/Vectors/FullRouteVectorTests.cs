using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Overlay.Reference.Spec;
using static Overlay.Reference.Vectors.TunnelVector;

namespace Overlay.Reference.Vectors;

/// <summary>
/// The full-route vectors (docs/vectors/v1-baseline.json and v1-mac-array.json: two relays of two,
/// so no padding), rebuilt by the reference implementation from their inputs alone.
/// </summary>
public sealed class FullRouteVectorTests
{
    private const string RandomLabel = "overlay/v1 test vectors";

    [Theory]
    [InlineData("v1-baseline.json")]
    [InlineData("v1-mac-array.json")]
    public void Headers_and_cells_follow_from_the_inputs(string file)
    {
        var vector = VectorFiles.Load(file);
        var network = vector["network"]!;
        var slots = (int)network["maxRelays"]! + 1;
        var cellSize = (int)network["cellSize"]!;
        var macArray = (string)network["construction"]! == "MacArray";
        var deadline = (byte)(int)vector["deadlineClass"]!;
        Assert.Equal("Duplex", (string)vector["mode"]!);
        var hops = vector["hops"]!.AsArray().Select(h => h!.AsObject()).ToArray();
        var n = hops.Length;
        Assert.Equal(slots, n);

        // Section 12: the onion keys and the random stream.
        var random = new VectorRandom(RandomLabel);
        var route = new RouteHop[n];
        var ephemeral = new byte[n][];
        for (var i = 0; i < n; i++)
        {
            var onionPrivate = SHA256.HashData(Encoding.UTF8.GetBytes($"overlay/v1 test vector onion key {i}"));
            Assert.Equal(Bytes.ToHex(onionPrivate), (string)hops[i]["onionPrivateKey"]!);
            route[i] = new RouteHop(SHA256.HashData(Encoding.UTF8.GetBytes($"overlay/v1 test vector node {i}")), 7u + (uint)i, X25519.PublicKey(onionPrivate));
            Assert.Equal((Bytes.ToHex(route[i].NodeId), route[i].Epoch, Bytes.ToHex(route[i].OnionPublicKey)), ((string)hops[i]["nodeId"]!, (uint)hops[i]["epoch"]!, (string)hops[i]["onionPublicKey"]!));
            ephemeral[i] = random.Take(32);
        }

        var padding = random.Take((slots - n) * Wire.SlotSize);
        var paddingKey = macArray ? random.Take(32) : null;

        var headers = vector["headerAtHop"]!.AsArray().Select(h => (string)h!).ToArray();
        var header = new OnionHeaderBuilder(slots).Build(route, ephemeral, padding, mode: 1, deadline, service: "");
        Assert.Equal(headers[0], Bytes.ToHex(header));
        var secrets = new List<HopSecrets>();
        for (var i = 0; i < n; i++)
        {
            Assert.Equal(headers[i], Bytes.ToHex(header));
            var hop = new HeaderHop(slots, maxDeadlineClass: 7, new Dictionary<uint, byte[]> { [route[i].Epoch] = Hex(hops[i], "onionPrivateKey") });
            var result = hop.Process(header);
            Assert.Equal(0, result.Error);
            Assert.Equal(i < n - 1, result.IsRelay);
            secrets.Add(result.Secrets!);
            header = result.NextHeader!;
        }

        var cells = new TunnelCells(slots, cellSize, macArray, secrets, paddingKey);
        var request = Hex(vector, "requestPayload");
        var forward = Strings(vector, "forwardCellAtHop");
        var cell = cells.SealForward(0, Wire.End, request);
        Assert.Equal(forward[0], Bytes.ToHex(cell));
        for (var relay = 1; relay < n; relay++)
        {
            cell = cells.RelayForward(relay, 0, cell)!;
            Assert.Equal(forward[relay], Bytes.ToHex(cell));
        }

        var opened = cells.DestinationOpenForward(0, cell)!.Value;
        Assert.Equal(Wire.End, opened.Type);
        Assert.Equal(request, opened.Payload);

        var reply = Hex(vector, "replyPayload");
        var backward = Strings(vector, "backwardCellFromDestinationThenAfterRelay2ThenAfterRelay1");
        cell = cells.SealBackward(n, 0, Wire.End, reply);
        for (var step = 0; step < n; step++)
        {
            Assert.Equal(backward[step], Bytes.ToHex(cell));
            cell = step < n - 1 ? cells.RelayBackward(n - 1 - step, 0, cell) : cell;
        }

        var reading = cells.OriginOpenBackward(0, Bytes.FromHex(backward[^1]));
        Assert.Equal((Wire.End, n), (reading.Type, reading.ReportedBy));
        Assert.Equal(reply, reading.Payload);

        // Relay 2 reports its next hop unreachable (code 7, scope 1) as backward cell 1; the origin names hop 3.
        var error = Strings(vector, "errorCellFromRelay2ThenAfterRelay1");
        cell = cells.SealBackward(2, 1, Wire.Error, [7, 1]);
        Assert.Equal(error[0], Bytes.ToHex(cell));
        cell = cells.RelayBackward(1, 1, cell);
        Assert.Equal(error[1], Bytes.ToHex(cell));
        reading = cells.OriginOpenBackward(1, cell);
        Assert.Equal((7, 2, 3), (reading.ErrorCode, reading.ReportedBy, reading.AttributedTo));
    }

    private static string[] Strings(JsonObject vector, string name) => [.. vector[name]!.AsArray().Select(s => (string)s!)];
}
