using System.Runtime.InteropServices;

namespace Overlay.Identity;

/// <summary>What a path names, without following a symbolic link there.</summary>
internal enum UnixFileKind
{
    Missing,
    Directory,
    RegularFile,
    SymbolicLink,
    Other,
}

/// <summary>
/// The type, mode and owner of a path as <c>lstat</c> reports them. The BCL gives the mode but not the
/// owner, so on Linux this asks the kernel through <c>statx</c>, whose result layout is the same on every
/// architecture; elsewhere the owner is unknown (null) and the rest comes from the BCL.
/// </summary>
internal readonly partial record struct UnixFileStatus(UnixFileKind Kind, UnixFileMode Mode, uint? Owner)
{
    private const int AtCurrentDirectory = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const uint StatxType = 0x1;
    private const uint StatxMode = 0x2;
    private const uint StatxUid = 0x8;
    private const int StatxSize = 256;
    private const int StatxUidOffset = 20;
    private const int StatxModeOffset = 28;
    private const int NoSuchFile = 2;
    private const int NotADirectory = 20;

    /// <summary>The user this process acts as (its effective user id); null where it cannot be asked.</summary>
    public static uint? EffectiveUserId => OperatingSystem.IsLinux() ? geteuid() : null;

    /// <summary>Reads <paramref name="path"/>'s status; a symbolic link is reported as one, never followed.</summary>
    /// <exception cref="IOException">The status could not be read (other than the path not existing).</exception>
    public static UnixFileStatus Of(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            throw new PlatformNotSupportedException("Unix file status is not available on Windows");
        }

        return OperatingSystem.IsLinux() ? FromKernel(path) : FromBcl(path);
    }

    private static UnixFileStatus FromKernel(string path)
    {
        Span<byte> buffer = stackalloc byte[StatxSize];
        buffer.Clear();
        if (statx(AtCurrentDirectory, path, AtSymlinkNoFollow, StatxType | StatxMode | StatxUid, ref MemoryMarshal.GetReference(buffer)) != 0)
        {
            var error = Marshal.GetLastPInvokeError();
            if (error is NoSuchFile or NotADirectory)
            {
                return new UnixFileStatus(UnixFileKind.Missing, 0, null);
            }

            throw new IOException($"Could not read the owner and mode of '{path}': {Marshal.GetPInvokeErrorMessage(error)} (errno {error}).");
        }

        // struct statx is in native byte order: stx_mask at 0, stx_uid at 20, stx_mode at 28.
        var mask = MemoryMarshal.Read<uint>(buffer);
        if ((mask & (StatxType | StatxMode | StatxUid)) != (StatxType | StatxMode | StatxUid))
        {
            throw new IOException($"The file system did not report the owner and mode of '{path}'.");
        }

        var owner = MemoryMarshal.Read<uint>(buffer[StatxUidOffset..]);
        var mode = MemoryMarshal.Read<ushort>(buffer[StatxModeOffset..]);
        var kind = (mode & 0xF000) switch
        {
            0x4000 => UnixFileKind.Directory,
            0x8000 => UnixFileKind.RegularFile,
            0xA000 => UnixFileKind.SymbolicLink,
            _ => UnixFileKind.Other,
        };
        return new UnixFileStatus(kind, (UnixFileMode)(mode & 0xFFF), owner);
    }

    private static UnixFileStatus FromBcl(string path)
    {
        FileSystemInfo info = new FileInfo(path);
        if (!info.Exists)
        {
            info = new DirectoryInfo(path);
            if (!info.Exists && info.LinkTarget is null)
            {
                return new UnixFileStatus(UnixFileKind.Missing, 0, null);
            }
        }

        var kind = info.LinkTarget is not null ? UnixFileKind.SymbolicLink
            : info is DirectoryInfo ? UnixFileKind.Directory
            : UnixFileKind.RegularFile;
        return new UnixFileStatus(kind, info.UnixFileMode, null);
    }

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int statx(int directory, string path, int flags, uint mask, ref byte buffer);

    [LibraryImport("libc")]
    private static partial uint geteuid();
}
