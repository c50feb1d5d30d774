using Overlay.Identity;

namespace Overlay.Tests.Identity;

public sealed class NodeIdentityTests
{
    private const UnixFileMode OwnerReadWrite = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    [Fact]
    public void LoadOrCreate_creates_the_directory_and_reloads_the_same_identity()
    {
        using var temp = new TempDirectory();
        var dataDirectory = temp.Combine("node/data");
        byte[] data = [1, 2, 3];
        var first = new byte[NodeIdentity.SignatureSize];
        var second = new byte[NodeIdentity.SignatureSize];

        NodeId id;
        using (var created = NodeIdentity.LoadOrCreate(dataDirectory))
        {
            id = created.Id;
            created.Sign(data, first);
        }

        Assert.True(File.Exists(Path.Combine(dataDirectory, KeyDirectory.Name, NodeIdentity.FileName)));
        using var loaded = NodeIdentity.LoadOrCreate(dataDirectory);
        loaded.Sign(data, second);

        Assert.Equal(id, loaded.Id);
        Assert.False(id.IsNone);
        Assert.Equal(first, second); // Ed25519 is deterministic: same key, same signature
        Assert.True(NodeIdentity.Verify(id, data, second));
    }

    [Fact]
    public void Key_file_has_the_documented_layout_and_no_temporary_file_is_left()
    {
        using var temp = new TempDirectory();
        using var identity = NodeIdentity.LoadOrCreate(temp.Path);

        var bytes = File.ReadAllBytes(temp.Key(NodeIdentity.FileName));
        Assert.Equal(37, bytes.Length);
        Assert.Equal("OVID"u8.ToArray(), bytes[..4]);
        Assert.Equal(1, bytes[4]);
        Assert.Equal([NodeIdentity.FileName], temp.KeyFileNames());
        Assert.Empty(temp.FileNames());

        // The seed in the file yields the same public key.
        var key = NSec.Cryptography.Key.Import(NSec.Cryptography.SignatureAlgorithm.Ed25519, bytes[5..], NSec.Cryptography.KeyBlobFormat.RawPrivateKey);
        using (key)
        {
            Assert.Equal(identity.Id.AsSpan().ToArray(), key.PublicKey.Export(NSec.Cryptography.KeyBlobFormat.RawPublicKey));
        }
    }

    [Fact]
    public void Key_file_is_created_owner_only()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        using var temp = new TempDirectory();
        using var identity = NodeIdentity.LoadOrCreate(temp.Path);

        Assert.Equal(OwnerReadWrite, File.GetUnixFileMode(temp.Key(NodeIdentity.FileName)));
    }

    [Theory]
    [InlineData(UnixFileMode.OtherRead)]
    [InlineData(UnixFileMode.GroupRead)]
    [InlineData(UnixFileMode.GroupWrite)]
    [InlineData(UnixFileMode.OtherWrite)]
    public void A_key_file_accessible_by_others_is_refused(UnixFileMode extra)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        using var temp = new TempDirectory();
        NodeIdentity.LoadOrCreate(temp.Path).Dispose();
        var path = temp.Key(NodeIdentity.FileName);
        var seedHex = Convert.ToHexString(File.ReadAllBytes(path)[5..]);
        File.SetUnixFileMode(path, OwnerReadWrite | extra);

        var error = Assert.Throws<InvalidOperationException>(() => NodeIdentity.LoadOrCreate(temp.Path));

        Assert.Contains(path, error.Message, StringComparison.Ordinal);
        Assert.Contains("chmod 600", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(seedHex, error.Message, StringComparison.OrdinalIgnoreCase);

        // Refused, not replaced: the operator's key is still there.
        Assert.Equal(seedHex, Convert.ToHexString(File.ReadAllBytes(path)[5..]));

        File.SetUnixFileMode(path, OwnerReadWrite);
        using var identity = NodeIdentity.LoadOrCreate(temp.Path);
        Assert.False(identity.Id.IsNone);
    }

    [Theory]
    [InlineData("short")]
    [InlineData("magic")]
    [InlineData("version")]
    public void A_corrupt_key_file_is_refused_and_kept(string corruption)
    {
        using var temp = new TempDirectory();
        NodeIdentity.LoadOrCreate(temp.Path).Dispose();
        var path = temp.Key(NodeIdentity.FileName);
        var bytes = File.ReadAllBytes(path);
        switch (corruption)
        {
            case "short":
                bytes = bytes[..36];
                break;
            case "magic":
                bytes[0] ^= 0xFF;
                break;
            default:
                bytes[4] = 2;
                break;
        }

        File.WriteAllBytes(path, bytes);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, OwnerReadWrite);
        }

        var error = Assert.Throws<InvalidDataException>(() => NodeIdentity.LoadOrCreate(temp.Path));
        Assert.Contains(path, error.Message, StringComparison.Ordinal);
        Assert.Equal(bytes, File.ReadAllBytes(path));
    }

    [Fact]
    public void ToString_shows_the_id_and_never_the_key()
    {
        using var temp = new TempDirectory();
        using var identity = NodeIdentity.LoadOrCreate(temp.Path);
        var seedHex = Convert.ToHexString(File.ReadAllBytes(temp.Key(NodeIdentity.FileName))[5..]);

        var text = identity.ToString();

        Assert.Contains(identity.Id.ToShortString(), text, StringComparison.Ordinal);
        Assert.DoesNotContain(seedHex, text, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(seedHex[..8], text, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void Signatures_verify_only_for_the_signer_and_the_data()
    {
        using var identity = NodeIdentity.Create();
        using var other = NodeIdentity.Create();
        byte[] data = [9, 8, 7, 6];
        var signature = new byte[NodeIdentity.SignatureSize];
        identity.Sign(data, signature);

        Assert.NotEqual(identity.Id, other.Id);
        Assert.True(NodeIdentity.Verify(identity.Id, data, signature));
        Assert.False(NodeIdentity.Verify(other.Id, data, signature));
        Assert.False(NodeIdentity.Verify(identity.Id, [9, 8, 7, 5], signature));
        Assert.False(NodeIdentity.Verify(identity.Id, data, signature.AsSpan(1)));
        Assert.False(NodeIdentity.Verify(NodeId.None, data, signature));
        Assert.Throws<ArgumentException>(() => identity.Sign(data, new byte[63]));
    }
}
