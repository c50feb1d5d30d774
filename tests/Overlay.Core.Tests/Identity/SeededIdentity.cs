namespace Overlay.Tests.Identity;

/// <summary>An identity from a fixed seed, for the published vectors.</summary>
internal static class SeededIdentity
{
    /// <summary>Writes the identity file's documented layout ("OVID", version 1, seed) and loads it as a node would.</summary>
    public static Overlay.Identity.NodeIdentity Load(TempDirectory temp, byte[] seed)
    {
        Overlay.Identity.NodeIdentity.LoadOrCreate(temp.Path).Dispose(); // the key directory, with the modes the node checks
        var path = temp.Key(Overlay.Identity.NodeIdentity.FileName);
        File.WriteAllBytes(path, [.. "OVID"u8, 1, .. seed]);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        return Overlay.Identity.NodeIdentity.LoadOrCreate(temp.Path);
    }
}
