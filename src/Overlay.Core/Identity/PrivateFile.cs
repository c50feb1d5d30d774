using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;

namespace Overlay.Identity;

/// <summary>
/// Files that hold secrets: created owner-only from the first byte (never chmod-ed after the
/// fact, which would leave a window), written to a temporary file and renamed into place so a
/// crash never leaves a half-written key, and checked for loose permissions on load.
/// </summary>
internal static class PrivateFile
{
    /// <summary>The suffix of temporary files; a crash can leave one behind.</summary>
    internal const string TempSuffix = ".tmp";

    private const UnixFileMode OwnerOnlyFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode OwnerOnlyDirectory = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    private const UnixFileMode GroupOrOthers =
        UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute |
        UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    /// <summary>Creates <paramref name="directory"/> (owner-only on Unix) if it does not exist.</summary>
    public static void EnsureDirectory(string directory)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(directory);
        }
        else
        {
            // The mode applies only to directories created here; an existing one is left alone.
            Directory.CreateDirectory(directory, OwnerOnlyDirectory);
        }
    }

    /// <summary>Starts writing <paramref name="path"/> through a temporary file in the same directory.</summary>
    public static AtomicWriter BeginWrite(string path) => new(path);

    /// <summary>
    /// Opens <paramref name="path"/> for reading. On Unix, returns the mode of the opened file
    /// (read from the handle, so it is the file actually read) in <paramref name="looseMode"/>
    /// when group or others have any access, and null otherwise.
    /// </summary>
    /// <remarks>
    /// Read secrets with <see cref="ReadExactly"/> on the handle: a buffered read would leave a
    /// copy in the stream's managed buffer, which nobody zeroes.
    /// </remarks>
    public static FileStream OpenRead(string path, out UnixFileMode? looseMode)
    {
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 64 * 1024);
        looseMode = null;
        if (!OperatingSystem.IsWindows())
        {
            try
            {
                var mode = File.GetUnixFileMode(stream.SafeFileHandle);
                looseMode = (mode & GroupOrOthers) != 0 ? mode : null;
            }
            catch
            {
                stream.Dispose();
                throw;
            }
        }

        return stream;
    }

    /// <summary>A mode as the octal digits chmod takes (e.g. 644).</summary>
    public static string ToOctal(UnixFileMode mode) => Convert.ToString((int)mode & 0xFFF, 8);

    /// <summary>Reads exactly <paramref name="buffer"/>.Length bytes at <paramref name="offset"/>.</summary>
    public static void ReadExactly(SafeFileHandle handle, Span<byte> buffer, long offset)
    {
        while (!buffer.IsEmpty)
        {
            var read = RandomAccess.Read(handle, buffer, offset);
            if (read == 0)
            {
                throw new EndOfStreamException();
            }

            buffer = buffer[read..];
            offset += read;
        }
    }

    /// <summary>
    /// A temporary file that becomes <see cref="Path"/> on <see cref="Commit"/> and is deleted
    /// if disposed before that. Write secrets with <see cref="WriteAt"/> (unbuffered, so no copy
    /// is left in a managed buffer), the rest through <see cref="Stream"/>.
    /// </summary>
    internal sealed class AtomicWriter : IDisposable
    {
        private readonly string _tempPath;
        private bool _committed;

        public AtomicWriter(string path)
        {
            Path = path;
            _tempPath = $"{path}.{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8))}{TempSuffix}";
            var options = new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.ReadWrite,
                Share = FileShare.None,
                BufferSize = 64 * 1024,
            };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = OwnerOnlyFile;
            }

            Stream = new FileStream(_tempPath, options);
        }

        /// <summary>The final path.</summary>
        public string Path { get; }

        /// <summary>The temporary file, open for reading and writing.</summary>
        public FileStream Stream { get; }

        /// <summary>Writes <paramref name="data"/> at <paramref name="offset"/>, bypassing the stream's buffer.</summary>
        public void WriteAt(ReadOnlySpan<byte> data, long offset)
        {
            Stream.Flush();
            RandomAccess.Write(Stream.SafeFileHandle, data, offset);
        }

        /// <summary>Flushes to disk and renames the temporary file to <see cref="Path"/>.</summary>
        /// <param name="overwrite">Replace an existing file; when false and one exists, an <see cref="IOException"/> is thrown.</param>
        public void Commit(bool overwrite)
        {
            // Flushed to the device before the rename, so the name never points at unwritten data.
            Stream.Flush(flushToDisk: true);
            Stream.Dispose();
            File.Move(_tempPath, Path, overwrite);
            _committed = true;
        }

        public void Dispose()
        {
            Stream.Dispose();
            if (!_committed)
            {
                File.Delete(_tempPath);
            }
        }
    }
}
