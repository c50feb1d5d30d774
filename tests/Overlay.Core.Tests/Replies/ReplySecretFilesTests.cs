using Overlay.Onion;
using Overlay.Protocol;
using Overlay.Replies;
using Overlay.Tests.Identity;
using Overlay.Tests.Support;

namespace Overlay.Tests.Replies;

/// <summary>
/// The reply secrets a node keeps in its key directory: owner-only, read back whole, and deleted unread
/// when expired, corrupt or readable by others.
/// </summary>
public sealed class ReplySecretFilesTests
{
    private static readonly DateTimeOffset Now = DateTimeOffset.UtcNow;

    [Fact]
    public void A_saved_secret_is_loaded_back_whole_and_deleting_it_forgets_it()
    {
        using var data = new TempDirectory();
        using var secret = Make(TimeSpan.FromHours(1));
        var handle = ReplySecretFiles.NewHandle();
        ReplySecretFiles.Save(data.Path, handle, secret);
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(data.Key($"reply-{handle}.secret")));
        }

        var loaded = ReplySecretFiles.Load(data.Path, Now);
        var (name, copy) = Assert.Single(loaded.Secrets);
        using var owned = copy;
        Assert.Equal(handle, name);
        Assert.Equal(secret.Encode(), copy.Encode());
        Assert.Empty(loaded.Discarded);

        ReplySecretFiles.Delete(data.Path, handle);
        Assert.Empty(ReplySecretFiles.Load(data.Path, Now).Secrets);
    }

    [Fact]
    public void Expired_corrupt_and_loose_files_are_deleted_unread()
    {
        using var data = new TempDirectory();
        using var expired = Make(TimeSpan.FromMinutes(1));
        using var corrupt = Make(TimeSpan.FromHours(1));
        using var loose = Make(TimeSpan.FromHours(1));
        ReplySecretFiles.Save(data.Path, ReplySecretFiles.NewHandle(), expired);
        var corruptHandle = ReplySecretFiles.NewHandle();
        ReplySecretFiles.Save(data.Path, corruptHandle, corrupt);
        var looseHandle = ReplySecretFiles.NewHandle();
        ReplySecretFiles.Save(data.Path, looseHandle, loose);
        var path = data.Key($"reply-{corruptHandle}.secret");
        var bytes = File.ReadAllBytes(path);
        bytes[10] ^= 1;
        File.WriteAllBytes(path, bytes);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(data.Key($"reply-{looseHandle}.secret"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead);
        }

        var loaded = ReplySecretFiles.Load(data.Path, Now.AddMinutes(2));

        Assert.Empty(loaded.Secrets);
        Assert.Equal(1, loaded.Expired);
        Assert.Equal(OperatingSystem.IsWindows() ? 1 : 2, loaded.Discarded.Count);
        Assert.Contains(loaded.Discarded, d => d.Contains("corrupt", StringComparison.Ordinal));
        if (!OperatingSystem.IsWindows())
        {
            Assert.DoesNotContain(data.KeyFileNames(), n => n.StartsWith("reply-", StringComparison.Ordinal));
        }
    }

    private static ReplyBlockSecret Make(TimeSpan lifetime)
    {
        using var network = new TestNetwork(NetworkParameters.Default, 2, seed: 21);
        using var block = ReplyBlocks.Create(new OnionHeaderBuilder(NetworkParameters.Default), network.Route(1), DeadlineClass.Seconds30, Now + lifetime, out var secret);
        return secret;
    }
}
