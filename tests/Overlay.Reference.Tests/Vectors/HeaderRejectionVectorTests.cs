using System.Text.Json.Nodes;
using Overlay.Reference.Spec;
using static Overlay.Reference.Vectors.TunnelVector;

namespace Overlay.Reference.Vectors;

/// <summary>
/// docs/vectors/v1-header-rejections.json: headers sealed to one hop with a slot or an outer field
/// that breaks (or only just keeps) a rule of docs/protocol.md 6.2. The reference seals the same
/// bytes from the spec and its hop must reach the outcome the vector gives, error code included.
/// </summary>
public sealed class HeaderRejectionVectorTests
{
    private static readonly JsonObject File = VectorFiles.Load("v1-header-rejections.json");

    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var entry in File["cases"]!.AsArray())
        {
            data.Add((string)entry!["name"]!);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void The_hop_reaches_the_vector_s_outcome(string name)
    {
        var entry = File["cases"]!.AsArray().Single(c => (string)c!["name"]! == name)!;
        var network = File["network"]!;
        var slots = (int)network["maxRelays"]! + 1;
        var epoch = (uint)File["epoch"]!;
        var onionPrivate = Hex(File, "onionPrivateKey");
        var header = Hex(entry, "header");

        if (entry["slot"] is not null)
        {
            // Section 6.3 for a route of one hop, with this slot.
            var slot = Hex(entry, "slot");
            var built = new OnionHeaderBuilder(slots).Build(
                [new RouteHop(new byte[32], epoch, X25519.PublicKey(onionPrivate))],
                [Hex(entry, "ephemeralPrivateKey")],
                Hex(entry, "padding"),
                slot,
                slot[2]);
            Assert.Equal(Bytes.ToHex(header), Bytes.ToHex(built));
        }

        var hop = new HeaderHop(slots, (int)network["maxDeadlineClass"]!, new Dictionary<uint, byte[]> { [epoch] = onionPrivate });
        var result = hop.Process(header);
        switch ((string)entry["outcome"]!)
        {
            case "rejected":
                Assert.Equal((int)entry["error"]!, result.Error);
                break;
            case "deliver":
                Assert.True(result.IsDeliver, $"refused with {result.Error}");
                Assert.Equal(((int)entry["mode"]!, (string)entry["service"]!), (result.Mode, result.Service));
                Assert.Equal((string?)entry["replyId"] ?? "", result.Mode == 3 ? Bytes.ToHex(result.ReplyId) : "");
                break;
            case "relay":
                Assert.True(result.IsRelay, $"refused with {result.Error}");
                Assert.Equal((string)entry["nextHeader"]!, Bytes.ToHex(result.NextHeader));
                break;
            default:
                Assert.Fail($"unknown outcome {entry["outcome"]}");
                break;
        }
    }
}
