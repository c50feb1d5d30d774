using Overlay.Identity;

namespace Overlay.Deploy.Tests;

/// <summary>The host's <c>key</c> verb, run as the built assembly: how an operator makes an authority's keys beforehand.</summary>
public sealed class KeyVerbTests(ITestOutputHelper log) : IDisposable
{
    private readonly DirectoryInfo _root = Directory.CreateTempSubdirectory("overlay-key-verb-");

    public void Dispose() => _root.Delete(recursive: true);

    [Fact]
    public async Task Key_creates_a_private_key_once_and_prints_its_public_key_each_time()
    {
        var directory = Path.Combine(_root.FullName, "authority");

        var created = await RunKeyAsync(directory);
        var again = await RunKeyAsync(directory);

        Assert.Equal(0, created.ExitCode);
        Assert.True(NodeId.TryParse(created.Output.Trim(), out var id), created.Output);
        Assert.Equal(created.Output, again.Output);
        using (var identity = NodeIdentity.LoadOrCreate(directory))
        {
            Assert.Equal(id, identity.Id);
        }

        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(KeyDirectory.PathIn(directory)));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(KeyDirectory.PathIn(directory), NodeIdentity.FileName)));
        }
    }

    [Fact]
    public async Task Key_refuses_a_key_directory_others_can_read()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        var directory = Path.Combine(_root.FullName, "shared");
        Directory.CreateDirectory(KeyDirectory.PathIn(directory));
        File.SetUnixFileMode(KeyDirectory.PathIn(directory), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);

        var result = await RunKeyAsync(directory);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains(KeyDirectory.PathIn(directory), result.Output, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(KeyDirectory.PathIn(directory), NodeIdentity.FileName)));
    }

    [Fact]
    public async Task Key_refuses_a_corrupt_key_file_in_one_line()
    {
        var directory = Path.Combine(_root.FullName, "corrupt");
        using (NodeIdentity.LoadOrCreate(directory))
        {
        }

        var file = Path.Combine(KeyDirectory.PathIn(directory), NodeIdentity.FileName);
        File.WriteAllBytes(file, new byte[3]);

        var result = await RunKeyAsync(directory);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("is not an identity key file", result.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled", result.Output, StringComparison.Ordinal);
    }

    private Task<ProcessResult> RunKeyAsync(string directory) =>
        Processes.RunAsync(Processes.Dotnet, [Repo.BuiltHostDll, "key", directory], TestTimeouts.Seconds(30), log: log);
}
