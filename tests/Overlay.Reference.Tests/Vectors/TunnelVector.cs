using System.Text.Json.Nodes;
using Overlay.Reference.Spec;

namespace Overlay.Reference.Vectors;

/// <summary>One tunnel of a route vector file (docs/protocol.md 12), read into the reference's terms.</summary>
internal sealed class TunnelVector
{
    public TunnelVector(JsonObject file, int index)
    {
        var network = file["network"]!;
        Slots = (int)network["maxRelays"]! + 1;
        CellSize = (int)network["cellSize"]!;
        MacArray = (string)network["construction"]! == "MacArray";
        MaxDeadlineClass = (int)network["maxDeadlineClass"]!;
        Deadline = (byte)(int)file["deadlineClass"]!;
        Json = file["tunnels"]![index]!.AsObject();
        Hops = [.. Json["hops"]!.AsArray().Select(h => h!.AsObject())];
        Relays = (int)Json["relays"]!;
        Mode = (byte)(int)Json["mode"]!;
        Service = (string)Json["service"]!;
        Label = (string)Json["randomLabel"]!;
        Route = [.. Hops.Select(h => new RouteHop(Hex(h, "nodeId"), (uint)h["epoch"]!, Hex(h, "onionPublicKey")))];
    }

    public JsonObject Json { get; }

    public int Slots { get; }

    public int CellSize { get; }

    public bool MacArray { get; }

    public int MaxDeadlineClass { get; }

    public byte Deadline { get; }

    public int Relays { get; }

    public byte Mode { get; }

    public string Service { get; }

    public string Label { get; }

    public IReadOnlyList<JsonObject> Hops { get; }

    public IReadOnlyList<RouteHop> Route { get; }

    public IEnumerable<JsonObject> Forward => Json["forward"]!.AsArray().Select(c => c!.AsObject());

    public IEnumerable<JsonObject> Backward => Json["backward"]!.AsArray().Select(c => c!.AsObject());

    public static byte[] Hex(JsonNode node, string name) => Bytes.FromHex((string)node[name]!);

    /// <summary>Each hop's keys, derived by the reference from the ephemeral key and the hop's onion public key.</summary>
    public IReadOnlyList<HopSecrets> DeriveSecrets() =>
        [.. Hops.Select(h => HopSecrets.Derive(X25519.Agree(Hex(h, "ephemeralPrivateKey"), Hex(h, "onionPublicKey"))!))];

    public TunnelCells Cells() =>
        new(Slots, CellSize, MacArray, DeriveSecrets(), MacArray ? Hex(Json, "macArrayPaddingKey") : null);

    public HeaderHop HopAt(int index) =>
        new(Slots, MaxDeadlineClass, new Dictionary<uint, byte[]> { [Route[index].Epoch] = Hex(Hops[index], "onionPrivateKey") });
}
