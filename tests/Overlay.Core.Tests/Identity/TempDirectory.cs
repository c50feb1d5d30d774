using Overlay.Identity;

namespace Overlay.Tests.Identity;

/// <summary>A fresh directory under the system temp directory, deleted on dispose.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "overlay-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string Combine(string name) => System.IO.Path.Combine(Path, name);

    /// <summary>A file in the key directory of this directory used as a data directory.</summary>
    public string Key(string name) => System.IO.Path.Combine(Path, KeyDirectory.Name, name);

    /// <summary>The files of the key directory of this directory used as a data directory.</summary>
    public string[] KeyFileNames()
    {
        var keys = System.IO.Path.Combine(Path, KeyDirectory.Name);
        return Directory.Exists(keys) ? Directory.GetFiles(keys).Select(f => System.IO.Path.GetFileName(f)).Order(StringComparer.Ordinal).ToArray() : [];
    }

    public string[] FileNames() => Directory.GetFiles(Path).Select(System.IO.Path.GetFileName).Order(StringComparer.Ordinal).ToArray()!;

    public void Dispose()
    {
        if (Directory.Exists(Path))
        {
            Directory.Delete(Path, recursive: true);
        }
    }
}
