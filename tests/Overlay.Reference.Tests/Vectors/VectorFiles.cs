using System.Text.Json.Nodes;
using Overlay.Testing;

namespace Overlay.Reference.Vectors;

/// <summary>The JSON files under docs/vectors, found from the test's output directory.</summary>
internal static class VectorFiles
{
    /// <summary>Every file this project checks; a new file must be added here (and described in docs/protocol.md 12).</summary>
    public static readonly IReadOnlyList<string> Checked =
        ["v1-baseline.json", "v1-mac-array.json", "v1-routes-baseline.json", "v1-routes-mac-array.json", "v1-header-rejections.json", "v1-link-certificate.json",
            "v1-reply-block.json", "v1-membership.json", "v1-revocation.json"];

    public static string Directory => Repo.VectorDirectory;

    public static JsonObject Load(string file) =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(Directory, file)))!.AsObject();
}
