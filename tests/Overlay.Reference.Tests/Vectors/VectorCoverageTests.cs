using Overlay.Testing;

namespace Overlay.Reference.Vectors;

/// <summary>No vector file goes unchecked by the reference or undescribed by the spec.</summary>
public sealed class VectorCoverageTests
{
    [Fact]
    public void Every_vector_file_is_checked_here_and_described_in_section_12()
    {
        var files = System.IO.Directory.GetFiles(VectorFiles.Directory, "*.json").Select(Path.GetFileName).Order(StringComparer.Ordinal);
        Assert.Equal(VectorFiles.Checked.Order(StringComparer.Ordinal), files);

        var protocol = File.ReadAllText(Path.Combine(Repo.Root, "docs", "protocol.md"));
        var section = protocol[protocol.IndexOf("## 12. Test vectors", StringComparison.Ordinal)..];
        foreach (var file in VectorFiles.Checked)
        {
            Assert.Contains($"`{file}`", section, StringComparison.Ordinal);
        }
    }
}
