using System.Text.Json.Nodes;

namespace Overlay.Reference.Vectors;

/// <summary>The JSON files under docs/vectors, found from the test's output directory.</summary>
internal static class VectorFiles
{
    public static JsonObject Load(string file) =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(Directory(), file)))!.AsObject();

    private static string Directory()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Overlay.sln")))
            {
                return Path.Combine(directory.FullName, "docs", "vectors");
            }
        }

        throw new InvalidOperationException("Overlay.sln not found above " + AppContext.BaseDirectory);
    }
}
