using System.Text.Json;
using System.Text.Json.Nodes;
using Overlay.Testing;

namespace Overlay.Tests.Vectors;

/// <summary>
/// The published vector files under docs/vectors: a computed vector is compared with its file field
/// by field, or, with OVERLAY_WRITE_VECTORS=1, written over it after an intended format change (say so
/// in docs/protocol.md).
/// </summary>
internal static class VectorFile
{
    public static void MatchOrWrite(string file, JsonObject computed)
    {
        var text = computed.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";
        var path = Path.Combine(Repo.VectorDirectory, file);
        if (Environment.GetEnvironmentVariable("OVERLAY_WRITE_VECTORS") == "1")
        {
            File.WriteAllText(path, text);
        }

        Assert.True(File.Exists(path), $"missing {path}");
        var expected = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        var actual = JsonNode.Parse(text)!.AsObject();
        foreach (var (name, value) in expected)
        {
            Assert.True(JsonNode.DeepEquals(value, actual[name]), $"vector field '{name}' differs from {file}");
        }

        Assert.Equal(expected.Count, actual.Count);
    }

    public static string Hex(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(bytes);
}
