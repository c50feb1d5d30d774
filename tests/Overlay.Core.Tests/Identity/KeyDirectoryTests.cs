using System.Diagnostics;
using Overlay.Identity;
using Overlay.Onion;
using Overlay.Protocol;
using Xunit.Abstractions;

namespace Overlay.Tests.Identity;

/// <summary>
/// The key files live in <c>keys/</c> of the data directory, which the node creates 0700 and checks at
/// every use (a directory of the node's user, mode exactly 0700, not a link), so whoever can write the
/// data directory cannot plant a key file; an older layout is moved there once, after the same checks.
/// </summary>
public sealed class KeyDirectoryTests(ITestOutputHelper output) : IDisposable
{
    private const UnixFileMode OwnerOnlyDirectory = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode OwnerReadWrite = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    // A user id nobody on a test machine runs as.
    private const int Stranger = 54321;

    private static readonly DateTimeOffset Now = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);

    private readonly TempDirectory _temp = new();
    private readonly OnionKeyOptions _options = new() { ReplayCacheCapacity = 1_000 };

    private string Keys => KeyDirectory.PathIn(_temp.Path);

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void Every_key_file_is_written_in_an_owner_only_keys_directory()
    {
        using (NodeIdentity.LoadOrCreate(_temp.Path))
        {
        }

        var epoch = OnionKeyStore.NextEpoch(_temp.Path);
        using var entry = Epoch(epoch);
        OnionKeyStore.Save(_temp.Path, [entry]);

        Assert.Equal([NodeIdentity.FileName, OnionKeyStore.StateFileName(epoch), OnionKeyStore.CounterFileName], _temp.KeyFileNames());
        Assert.Empty(_temp.FileNames());
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(OwnerOnlyDirectory, File.GetUnixFileMode(Keys));
        }
    }

    [Fact]
    public void Under_a_set_group_id_data_directory_the_keys_directory_is_still_exactly_0700()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        // What the kubelet makes of a volume's root with fsGroup: group-writable and set-group-id.
        File.SetUnixFileMode(_temp.Path, OwnerOnlyDirectory | UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute | UnixFileMode.SetGroup);

        using (NodeIdentity.LoadOrCreate(_temp.Path))
        {
        }

        Assert.Equal(OwnerOnlyDirectory, File.GetUnixFileMode(Keys));
        using var again = NodeIdentity.LoadOrCreate(_temp.Path);
    }

    [Theory]
    [InlineData(UnixFileMode.GroupRead | UnixFileMode.GroupExecute)]
    [InlineData(UnixFileMode.GroupWrite | UnixFileMode.GroupExecute)]
    [InlineData(UnixFileMode.OtherExecute)]
    [InlineData(UnixFileMode.OtherWrite | UnixFileMode.OtherExecute)]
    [InlineData(UnixFileMode.SetGroup)]
    [InlineData(UnixFileMode.StickyBit)]
    public void A_keys_directory_with_any_mode_but_0700_stops_every_key_operation(UnixFileMode extra)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        using (NodeIdentity.LoadOrCreate(_temp.Path))
        {
        }

        File.SetUnixFileMode(Keys, OwnerOnlyDirectory | extra);

        foreach (var error in EveryKeyOperationFails())
        {
            Assert.Contains($"'{Keys}'", error.Message, StringComparison.Ordinal);
            Assert.Contains("chmod 700", error.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void A_state_file_planted_through_a_writable_data_directory_is_never_loaded()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        // Someone who can write the data directory swaps in a keys directory of their own with a state file
        // they wrote (here: a key the test knows, and an empty replay cache).
        var planted = _temp.Combine("planted");
        using (var entry = Epoch(1))
        {
            OnionKeyStore.Save(planted, [entry]);
        }

        Directory.Move(KeyDirectory.PathIn(planted), Keys);
        File.SetUnixFileMode(Keys, OwnerOnlyDirectory | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute | UnixFileMode.GroupRead);

        var error = Assert.Throws<InvalidOperationException>(() => OnionKeyStore.LoadAndConsume(_temp.Path, _options, Now));
        Assert.Contains($"'{Keys}'", error.Message, StringComparison.Ordinal);
        Assert.Equal([OnionKeyStore.StateFileName(1)], _temp.KeyFileNames());
    }

    [Fact]
    public void A_keys_directory_of_another_user_is_refused_naming_the_owner()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        KeyDirectory.Open(_temp.Path);
        var me = UnixFileStatus.Of(Keys).Owner;
        if (me is null)
        {
            output.WriteLine("the owner of a file cannot be read on this system: only the mode is checked");
            return;
        }

        // As if the node ran as another user than the one that owns the directory.
        var error = Assert.Throws<InvalidOperationException>(() => KeyDirectory.Open(_temp.Path, expectedOwner: me.Value + 1));
        Assert.Contains($"'{Keys}'", error.Message, StringComparison.Ordinal);
        Assert.Contains($"owned by user {me}", error.Message, StringComparison.Ordinal);

        if (!ChangeOwner(Keys, Stranger))
        {
            return;
        }

        // Really owned by someone else: every key operation of this node refuses it.
        foreach (var refused in EveryKeyOperationFails())
        {
            Assert.Contains($"owned by user {Stranger}", refused.Message, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_keys_path_that_is_a_link_or_a_file_is_refused(bool link)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        if (link)
        {
            // A directory of the right user and mode elsewhere, reached through a link.
            var elsewhere = _temp.Combine("elsewhere");
            Directory.CreateDirectory(elsewhere, OwnerOnlyDirectory);
            Directory.CreateSymbolicLink(Keys, elsewhere);
        }
        else
        {
            File.WriteAllBytes(Keys, []);
        }

        foreach (var error in EveryKeyOperationFails())
        {
            Assert.Contains($"'{Keys}'", error.Message, StringComparison.Ordinal);
            Assert.Contains(link ? "symbolic link" : "not a directory", error.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Key_files_of_the_old_layout_move_into_the_keys_directory_once()
    {
        var (id, epoch) = WriteOldLayout();
        File.WriteAllText(_temp.Combine("control.token"), "not a key");

        using (var identity = NodeIdentity.LoadOrCreate(_temp.Path))
        {
            Assert.Equal(id, identity.Id);
        }

        Assert.Equal([NodeIdentity.FileName, OnionKeyStore.StateFileName(epoch), OnionKeyStore.CounterFileName], _temp.KeyFileNames());
        Assert.Equal(["control.token"], _temp.FileNames());
        var loaded = OnionKeyStore.LoadAndConsume(_temp.Path, _options, Now);
        Assert.Equal([epoch], loaded.Epochs.Select(e => e.Epoch));
        foreach (var entry in loaded.Epochs)
        {
            entry.Dispose();
        }

        Assert.Equal(epoch + 1, OnionKeyStore.NextEpoch(_temp.Path));
    }

    [Theory]
    [InlineData("mode")]
    [InlineData("owner")]
    [InlineData("link")]
    [InlineData("both")]
    public void An_old_key_file_that_fails_the_checks_stops_the_node_and_stays_where_it_is(string problem)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        var (_, epoch) = WriteOldLayout();
        var path = _temp.Combine(OnionKeyStore.StateFileName(epoch));
        var expected = problem;
        switch (problem)
        {
            case "mode":
                File.SetUnixFileMode(path, OwnerReadWrite | UnixFileMode.GroupRead);
                expected = "mode 640";
                break;
            case "owner":
                if (!ChangeOwner(path, Stranger))
                {
                    return;
                }

                expected = $"owned by user {Stranger}";
                break;
            case "link":
                File.Move(path, _temp.Combine("real.state"));
                File.CreateSymbolicLink(path, _temp.Combine("real.state"));
                expected = "not a regular file";
                break;
            default:
                Directory.CreateDirectory(Keys, OwnerOnlyDirectory);
                File.Copy(path, Path.Combine(Keys, Path.GetFileName(path)));
                expected = "also in the key directory";
                break;
        }

        var error = Assert.Throws<InvalidOperationException>(() => NodeIdentity.LoadOrCreate(_temp.Path));

        Assert.Contains($"'{path}'", error.Message, StringComparison.Ordinal);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.True(File.Exists(path) || Directory.Exists(path) || new FileInfo(path).LinkTarget is not null, "the file was moved or deleted");
    }

    /// <summary>Writes identity.key, the epoch counter and one onion state file where nodes used to keep them.</summary>
    private (NodeId Id, uint Epoch) WriteOldLayout()
    {
        var old = _temp.Combine("old");
        NodeId id;
        using (var identity = NodeIdentity.LoadOrCreate(old))
        {
            id = identity.Id;
        }

        var epoch = OnionKeyStore.NextEpoch(old);
        using (var entry = Epoch(epoch))
        {
            OnionKeyStore.Save(old, [entry]);
        }

        foreach (var file in Directory.GetFiles(KeyDirectory.PathIn(old)))
        {
            File.Move(file, _temp.Combine(Path.GetFileName(file)));
        }

        Directory.Delete(old, recursive: true);
        return (id, epoch);
    }

    private List<InvalidOperationException> EveryKeyOperationFails()
    {
        using var entry = Epoch(9);
        return
        [
            Assert.Throws<InvalidOperationException>(() => NodeIdentity.LoadOrCreate(_temp.Path)),
            Assert.Throws<InvalidOperationException>(() => OnionKeyStore.LoadAndConsume(_temp.Path, _options, Now)),
            Assert.Throws<InvalidOperationException>(() => OnionKeyStore.NextEpoch(_temp.Path)),
            Assert.Throws<InvalidOperationException>(() => OnionKeyStore.Save(_temp.Path, [entry])),
        ];
    }

    private static OnionKeyEpoch Epoch(uint epoch) =>
        new(OnionKey.Create(epoch, Now.AddHours(-1), Now.AddDays(1), exportable: true), new ReplayCache(1_000));

    // Only root can give a file away; elsewhere the check is covered through the expected-owner seam above.
    private bool ChangeOwner(string path, int owner)
    {
        if (UnixFileStatus.EffectiveUserId != 0)
        {
            output.WriteLine("not running as root: a file of another user cannot be made here");
            return false;
        }

        using var chown = Process.Start(new ProcessStartInfo("chown", ["-h", owner.ToString(System.Globalization.CultureInfo.InvariantCulture), path]))!;
        Assert.True(chown.WaitForExit(TimeSpan.FromMinutes(1)), "chown did not finish");
        Assert.Equal(0, chown.ExitCode);
        return true;
    }
}
