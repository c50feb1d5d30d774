using NSec.Cryptography;
using Overlay.Identity;
using Overlay.Onion;
using Overlay.Protocol;

namespace Overlay.Tests.Identity;

public sealed class OnionKeyStoreTests : IDisposable
{
    private static readonly DateTimeOffset Now = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);

    private readonly TempDirectory _temp = new();
    private readonly OnionKeyOptions _options = new() { ReplayCacheCapacity = 1_000 };
    private readonly List<IDisposable> _owned = [];

    public void Dispose()
    {
        foreach (var item in _owned)
        {
            item.Dispose();
        }

        _temp.Dispose();
    }

    [Fact]
    public void Saved_keys_reload_with_the_same_secrets_and_times()
    {
        var first = Epoch(4, Now.AddHours(-25), Now.AddHours(-1));
        var second = Epoch(5, Now.AddHours(-1), Now.AddHours(23));
        OnionKeyStore.Save(_temp.Path, [second, first]);

        var result = Load();

        Assert.Empty(result.Discarded);
        Assert.Empty(result.ExpiredEpochs);
        Assert.Equal([4u, 5u], result.Epochs.Select(e => e.Epoch));
        foreach (var (saved, loaded) in new[] { first, second }.Zip(result.Epochs))
        {
            Assert.Equal(saved.Key.PublicKey.ToArray(), loaded.Key.PublicKey.ToArray());
            Assert.Equal(saved.Key.ValidFrom, loaded.Key.ValidFrom);
            Assert.Equal(saved.Key.ExpiresAt, loaded.Key.ExpiresAt);
            Assert.Equal(SharedSecretWith(saved.Key), SharedSecretWith(loaded.Key));
        }

        Assert.NotEqual(SharedSecretWith(result.Epochs[0].Key), SharedSecretWith(result.Epochs[1].Key));
    }

    [Fact]
    public void Replay_tags_survive_the_restart()
    {
        var entry = Epoch(1, Now, Now.AddDays(1));
        UInt128[] tags = [1, 2, UInt128.MaxValue, new UInt128(0xDEADBEEF, 42)];
        foreach (var tag in tags)
        {
            Assert.Equal(ReplayCheck.Fresh, entry.ReplayCache.TryAdd(tag));
        }

        OnionKeyStore.Save(_temp.Path, [entry]);
        var loaded = Assert.Single(Load().Epochs);

        Assert.Equal(tags.Length, loaded.ReplayCache.Count);
        Assert.Equal(_options.ReplayCacheCapacity, loaded.ReplayCache.Capacity);
        Assert.All(tags, tag => Assert.Equal(ReplayCheck.Replayed, loaded.ReplayCache.TryAdd(tag)));
        Assert.Equal(ReplayCheck.Fresh, loaded.ReplayCache.TryAdd(3));
    }

    [Fact]
    public void A_header_processed_before_the_restart_is_refused_as_replayed_after_it()
    {
        var network = NetworkParameters.Default;
        var entry = Epoch(9, Now, Now.AddDays(1));
        var hop = new RouteHop(new NodeId(Enumerable.Repeat((byte)7, NodeId.Size).ToArray()), entry.Epoch, entry.Key.PublicKey.ToArray());
        var builder = new OnionHeaderBuilder(network);
        var header = new byte[builder.HeaderSize];
        var next = new byte[builder.HeaderSize];
        builder.Build([hop], TunnelMode.Duplex, DeadlineClass.Seconds30, header).Dispose();

        using (var ring = new OnionKeyRing())
        {
            ring.Add(entry);
            _owned.Remove(entry);
            using var before = new OnionHeaderProcessor(network, ring).Process(header, next);
            Assert.Equal(HeaderOutcome.Deliver, before.Outcome);
            OnionKeyStore.Save(_temp.Path, ring.Epochs);
        }

        using var restarted = new OnionKeyRing();
        foreach (var loaded in Load().Epochs)
        {
            restarted.Add(loaded);
            _owned.Remove(loaded);
        }

        var processor = new OnionHeaderProcessor(network, restarted);
        using var replayed = processor.Process(header, next);
        Assert.Equal(HeaderOutcome.Rejected, replayed.Outcome);
        Assert.Equal(Errors.TunnelErrorKind.Replayed, replayed.Rejection);

        // The reloaded key still serves fresh headers.
        builder.Build([hop], TunnelMode.Duplex, DeadlineClass.Seconds30, header).Dispose();
        using var fresh = processor.Process(header, next);
        Assert.Equal(HeaderOutcome.Deliver, fresh.Outcome);
    }

    [Fact]
    public void Loading_consumes_the_state_files()
    {
        OnionKeyStore.Save(_temp.Path, [Epoch(1, Now, Now.AddDays(1)), Epoch(2, Now, Now.AddDays(1))]);
        Assert.Equal(["onion-1.state", "onion-2.state"], _temp.KeyFileNames());

        Assert.Equal(2, Load().Epochs.Count);

        Assert.Empty(_temp.KeyFileNames());
        var second = Load();
        Assert.Empty(second.Epochs);
        Assert.Empty(second.Discarded);
        Assert.Empty(second.ExpiredEpochs);
    }

    [Fact]
    public void Keys_expired_beyond_the_overlap_window_are_not_loaded()
    {
        var overlap = _options.OverlapWindow;
        var second = TimeSpan.FromSeconds(1);
        OnionKeyStore.Save(_temp.Path,
        [
            Epoch(1, Now.AddDays(-3), Now - overlap - second),
            Epoch(2, Now.AddDays(-2), Now - overlap),
            Epoch(3, Now.AddDays(-1), Now.AddHours(1)),
        ]);

        var result = Load();

        Assert.Equal([2u, 3u], result.Epochs.Select(e => e.Epoch));
        Assert.Equal([1u], result.ExpiredEpochs);
        Assert.Empty(result.Discarded);
        Assert.Empty(_temp.KeyFileNames());
    }

    [Theory]
    [InlineData("flip-key")]
    [InlineData("flip-tag")]
    [InlineData("truncate")]
    [InlineData("empty")]
    [InlineData("append")]
    [InlineData("wrong-name")]
    public void Corrupt_files_are_reported_and_deleted_and_do_not_stop_the_others(string corruption)
    {
        var good = Epoch(1, Now, Now.AddDays(1));
        var bad = Epoch(2, Now, Now.AddDays(1));
        bad.ReplayCache.TryAdd(77);
        OnionKeyStore.Save(_temp.Path, [good, bad]);
        var path = _temp.Key("onion-2.state");
        var bytes = File.ReadAllBytes(path);
        switch (corruption)
        {
            case "flip-key":
                bytes[40] ^= 1;
                break;
            case "flip-tag":
                bytes[^40] ^= 1;
                break;
            case "truncate":
                bytes = bytes[..^1];
                break;
            case "empty":
                bytes = [];
                break;
            case "append":
                bytes = [.. bytes, 0];
                break;
        }

        if (corruption == "wrong-name")
        {
            File.Move(path, _temp.Key("onion-02.state"));
            path = _temp.Key("onion-02.state");
        }
        else
        {
            WriteOwnerOnly(path, bytes);
        }

        var result = Load();

        Assert.Equal([1u], result.Epochs.Select(e => e.Epoch));
        var discarded = Assert.Single(result.Discarded);
        Assert.Equal(path, discarded.Path);
        Assert.False(string.IsNullOrWhiteSpace(discarded.Reason));
        Assert.Empty(_temp.KeyFileNames());
    }

    [Fact]
    public void A_state_file_with_another_epoch_inside_is_refused()
    {
        OnionKeyStore.Save(_temp.Path, [Epoch(3, Now, Now.AddDays(1))]);
        File.Move(_temp.Key("onion-3.state"), _temp.Key("onion-4.state"));

        var result = Load();

        Assert.Empty(result.Epochs);
        Assert.Contains("epoch 3", Assert.Single(result.Discarded).Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_cache_larger_than_the_configured_capacity_is_refused()
    {
        var entry = Epoch(1, Now, Now.AddDays(1));
        for (var tag = 0; tag < 20; tag++)
        {
            entry.ReplayCache.TryAdd((UInt128)tag);
        }

        OnionKeyStore.Save(_temp.Path, [entry]);

        var result = OnionKeyStore.LoadAndConsume(_temp.Path, new OnionKeyOptions { ReplayCacheCapacity = 10 }, Now);

        Assert.Empty(result.Epochs);
        Assert.Single(result.Discarded);
        Assert.Empty(_temp.KeyFileNames());
    }

    [Fact]
    public void State_files_are_owner_only_and_a_loose_one_is_discarded()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        OnionKeyStore.Save(_temp.Path, [Epoch(1, Now, Now.AddDays(1)), Epoch(2, Now, Now.AddDays(1))]);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(_temp.Key("onion-1.state")));
        File.SetUnixFileMode(_temp.Key("onion-2.state"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherRead);

        var result = Load();

        Assert.Equal([1u], result.Epochs.Select(e => e.Epoch));
        Assert.Contains("leaked", Assert.Single(result.Discarded).Reason, StringComparison.Ordinal);
        Assert.Empty(_temp.KeyFileNames());
    }

    [Fact]
    public void Leftovers_of_an_interrupted_save_are_reported_and_deleted()
    {
        var leftover = Path.Combine(KeyDirectory.Open(_temp.Path), "onion-1.state.0123456789abcdef.tmp");
        WriteOwnerOnly(leftover, [1, 2, 3]);

        var result = Load();

        Assert.Equal(leftover, Assert.Single(result.Discarded).Path);
        Assert.Empty(_temp.KeyFileNames());
    }

    [Fact]
    public void Save_refuses_keys_that_are_not_exportable_and_writes_nothing()
    {
        var exportable = Epoch(1, Now, Now.AddDays(1));
        var locked = new OnionKeyEpoch(OnionKey.Create(2, Now, Now.AddDays(1)), new ReplayCache(10));
        _owned.Add(locked);

        var error = Assert.Throws<InvalidOperationException>(() => OnionKeyStore.Save(_temp.Path, [exportable, locked]));

        Assert.Contains("exportable", error.Message, StringComparison.Ordinal);
        Assert.Empty(_temp.KeyFileNames());
    }

    [Fact]
    public void Save_refuses_duplicate_epochs()
    {
        Assert.Throws<ArgumentException>(() => OnionKeyStore.Save(_temp.Path, [Epoch(1, Now, Now.AddDays(1)), Epoch(1, Now, Now.AddDays(1))]));
        Assert.Empty(_temp.KeyFileNames());
    }

    [Fact]
    public void Save_leaves_exactly_the_given_epochs()
    {
        OnionKeyStore.Save(_temp.Path, [Epoch(1, Now, Now.AddDays(1)), Epoch(2, Now, Now.AddDays(1))]);
        var later = Epoch(3, Now, Now.AddDays(1));
        later.ReplayCache.TryAdd(5);

        OnionKeyStore.Save(_temp.Path, [later]);

        Assert.Equal(["onion-3.state"], _temp.KeyFileNames());
        var loaded = Assert.Single(Load().Epochs);
        Assert.Equal(ReplayCheck.Replayed, loaded.ReplayCache.TryAdd(5));
    }

    [Fact]
    public void A_key_is_saved_once_and_a_failed_second_save_leaves_no_stale_state()
    {
        var entry = Epoch(1, Now, Now.AddDays(1));
        OnionKeyStore.Save(_temp.Path, [entry]);
        entry.ReplayCache.TryAdd(5); // accepted after the first save: the old file lacks it

        var error = Assert.Throws<InvalidOperationException>(() => OnionKeyStore.Save(_temp.Path, [entry]));

        Assert.Contains("already saved", error.Message, StringComparison.Ordinal);
        Assert.Empty(_temp.KeyFileNames());
    }

    [Fact]
    public void A_reloaded_key_can_be_saved_again_at_the_next_shutdown()
    {
        var entry = Epoch(1, Now, Now.AddDays(1));
        entry.ReplayCache.TryAdd(5);
        OnionKeyStore.Save(_temp.Path, [entry]);
        var reloaded = Assert.Single(Load().Epochs);
        reloaded.ReplayCache.TryAdd(6);

        OnionKeyStore.Save(_temp.Path, [reloaded]);
        var again = Assert.Single(Load().Epochs);

        Assert.Equal(SharedSecretWith(entry.Key), SharedSecretWith(again.Key));
        Assert.Equal(ReplayCheck.Replayed, again.ReplayCache.TryAdd(5));
        Assert.Equal(ReplayCheck.Replayed, again.ReplayCache.TryAdd(6));
    }

    [Fact]
    public void A_missing_directory_loads_nothing()
    {
        var result = OnionKeyStore.LoadAndConsume(_temp.Combine("absent"), _options, Now);

        Assert.Empty(result.Epochs);
        Assert.False(Directory.Exists(_temp.Combine("absent")));
    }

    [Fact]
    public void The_epoch_counter_is_monotonic_across_calls_and_restarts()
    {
        var directory = _temp.Combine("data");

        var issued = Enumerable.Range(0, 5).Select(_ => OnionKeyStore.NextEpoch(directory)).ToList();
        issued.Add(OnionKeyStore.NextEpoch(directory));

        Assert.Equal([1u, 2u, 3u, 4u, 5u, 6u], issued);
        Assert.True(File.Exists(Path.Combine(directory, KeyDirectory.Name, OnionKeyStore.CounterFileName)));
        Assert.Equal([OnionKeyStore.CounterFileName], Directory.GetFiles(Path.Combine(directory, KeyDirectory.Name)).Select(Path.GetFileName));

        // Saving and consuming onion keys does not touch the counter.
        OnionKeyStore.Save(directory, [Epoch(6, Now, Now.AddDays(1))]);
        OnionKeyStore.LoadAndConsume(directory, _options, Now).Epochs.ToList().ForEach(_owned.Add);
        Assert.Equal(7u, OnionKeyStore.NextEpoch(directory));
    }

    [Fact]
    public void A_corrupt_epoch_counter_is_refused()
    {
        Assert.Equal(1u, OnionKeyStore.NextEpoch(_temp.Path));
        var path = _temp.Key(OnionKeyStore.CounterFileName);
        File.WriteAllBytes(path, [1, 2, 3]);

        var error = Assert.Throws<InvalidDataException>(() => OnionKeyStore.NextEpoch(_temp.Path));

        Assert.Contains(path, error.Message, StringComparison.Ordinal);
        Assert.Equal(new byte[] { 1, 2, 3 }, File.ReadAllBytes(path));
    }

    private OnionKeyEpoch Epoch(uint epoch, DateTimeOffset validFrom, DateTimeOffset expiresAt)
    {
        var entry = new OnionKeyEpoch(OnionKey.Create(epoch, validFrom, expiresAt, exportable: true), new ReplayCache(_options.ReplayCacheCapacity));
        _owned.Add(entry);
        return entry;
    }

    private OnionKeyLoadResult Load()
    {
        var result = OnionKeyStore.LoadAndConsume(_temp.Path, _options, Now);
        _owned.AddRange(result.Epochs);
        return result;
    }

    private static byte[] SharedSecretWith(OnionKey key)
    {
        // A fixed peer key, so equal outputs mean equal private keys.
        var peerSeed = Enumerable.Range(1, 32).Select(i => (byte)i).ToArray();
        using var peer = Key.Import(KeyAgreementAlgorithm.X25519, peerSeed, KeyBlobFormat.RawPrivateKey);
        using var secret = KeyAgreementAlgorithm.X25519.Agree(peer, PublicKey.Import(KeyAgreementAlgorithm.X25519, key.PublicKey, KeyBlobFormat.RawPublicKey))!;
        // The node's own X25519 path (libsodium on the guarded key) against NSec's on the peer's side.
        var fromKey = new byte[32];
        Assert.True(Overlay.Crypto.Sodium.ScalarMult(fromKey, key.PrivateKey, peer.PublicKey.Export(KeyBlobFormat.RawPublicKey)));
        var a = KeyDerivationAlgorithm.HkdfSha256.DeriveBytes(secret, [], [], 32);
        var b = System.Security.Cryptography.HKDF.DeriveKey(System.Security.Cryptography.HashAlgorithmName.SHA256, fromKey, 32, [], []);
        Assert.Equal(a, b);
        return b;
    }

    private static void WriteOwnerOnly(string path, byte[] bytes)
    {
        File.WriteAllBytes(path, bytes);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
    }
}
