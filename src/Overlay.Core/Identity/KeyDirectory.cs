namespace Overlay.Identity;

/// <summary>
/// Where the node keeps its key files: <c>keys/</c> in the data directory, a directory the node creates
/// with mode 0700 and checks at every use (a real directory, not a symbolic link, owned by the user the
/// node runs as, mode exactly 0700). Whoever can write the data directory itself (a shared volume, a
/// group-writable mount) can then neither read a key nor plant a key file, such as an onion-key state
/// file with a known key and an empty replay cache; the most they can do is make the node refuse to start.
/// </summary>
/// <remarks>
/// The key files are <c>identity.key</c>, <c>onion-&lt;epoch&gt;.state</c> and <c>onion-epoch.counter</c>
/// (docs/protocol.md §5.0), and <c>reply-&lt;handle&gt;.secret</c> for outstanding reply blocks (§7.8). Key files left in the data directory by an earlier version are moved into
/// <c>keys/</c> once, after the same checks a key file gets (a regular file of this user, no access for
/// group or others); anything that fails them stops the node with a message naming the path.
/// </remarks>
public static class KeyDirectory
{
    /// <summary>The name of the key directory inside the data directory.</summary>
    public const string Name = "keys";

    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    private const UnixFileMode GroupOrOthers =
        UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute |
        UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    // Creation, checks and the one-time move are done by one caller at a time within the process.
    private static readonly Lock OpenLock = new();

    /// <summary>The key directory of <paramref name="dataDirectory"/>.</summary>
    public static string PathIn(string dataDirectory) => Path.Combine(dataDirectory, Name);

    /// <summary>
    /// Creates the key directory of <paramref name="dataDirectory"/> (and the data directory) if needed,
    /// checks it, moves key files from the data directory into it, and returns its path.
    /// </summary>
    /// <exception cref="InvalidOperationException">The key directory, or a key file to move, fails a check.</exception>
    internal static string Open(string dataDirectory) => Open(dataDirectory, UnixFileStatus.EffectiveUserId);

    /// <summary><see cref="Open(string)"/> with the owner to expect (tests stand in for another user with it).</summary>
    internal static string Open(string dataDirectory, uint? expectedOwner)
    {
        ArgumentException.ThrowIfNullOrEmpty(dataDirectory);
        lock (OpenLock)
        {
            PrivateFile.EnsureDirectory(dataDirectory);
            var keys = PathIn(dataDirectory);
            if (OperatingSystem.IsWindows())
            {
                Directory.CreateDirectory(keys);
            }
            else
            {
                var status = UnixFileStatus.Of(keys);
                if (status.Kind == UnixFileKind.Missing)
                {
                    Directory.CreateDirectory(keys, OwnerOnly);
                    // mkdir's mode loses bits to the umask, and under a set-group-id parent (a Kubernetes
                    // volume with fsGroup) the directory inherits that bit: set exactly 0700.
                    File.SetUnixFileMode(keys, OwnerOnly);
                    status = UnixFileStatus.Of(keys);
                }

                CheckDirectory(keys, status, expectedOwner);
            }

            MoveOldKeyFiles(dataDirectory, keys, expectedOwner);
            return keys;
        }
    }

    private static void CheckDirectory(string path, UnixFileStatus status, uint? expectedOwner)
    {
        var problem = status.Kind switch
        {
            UnixFileKind.Directory => null,
            UnixFileKind.SymbolicLink => "is a symbolic link; the node keeps keys only in a directory it created itself. Remove the link",
            _ => "is not a directory. Move it out of the way",
        };
        problem ??= OwnerProblem(path, status, expectedOwner);
        if (problem is null && status.Mode != OwnerOnly)
        {
            problem = $"has mode {PrivateFile.ToOctal(status.Mode)}, and the node requires exactly 700 (owner only, no " +
                $"group or other access, no special bits), as it creates it. Fix it with 'chmod 700 {path}'";
        }

        if (problem is not null)
        {
            throw new InvalidOperationException(
                $"The key directory '{path}' {problem}, then start again. The node refuses to use it: whoever else " +
                "can write or replace it could read its keys or plant one (see docs/operations.md, \"Keys\").");
        }
    }

    private static void MoveOldKeyFiles(string dataDirectory, string keys, uint? expectedOwner)
    {
        foreach (var from in Directory.EnumerateFiles(dataDirectory).Where(IsKeyFileName).Order(StringComparer.Ordinal).ToList())
        {
            if (!OperatingSystem.IsWindows())
            {
                CheckOldKeyFile(from, UnixFileStatus.Of(from), expectedOwner);
            }

            var to = Path.Combine(keys, Path.GetFileName(from));
            try
            {
                File.Move(from, to, overwrite: false);
            }
            catch (IOException e) when (File.Exists(to))
            {
                throw new InvalidOperationException(
                    $"The key file '{from}' is also in the key directory as '{to}'; the node does not know which one " +
                    "to use and refuses to start. Keep the right one in the key directory and delete the other.", e);
            }
        }
    }

    private static void CheckOldKeyFile(string path, UnixFileStatus status, uint? expectedOwner)
    {
        var problem = status.Kind == UnixFileKind.RegularFile ? null : "is not a regular file (a symbolic link?)";
        problem ??= OwnerProblem(path, status, expectedOwner);
        if (problem is null && (status.Mode & GroupOrOthers) != 0)
        {
            problem = $"is accessible by group or others (mode {PrivateFile.ToOctal(status.Mode)}), so the key may have leaked";
        }

        if (problem is not null)
        {
            throw new InvalidOperationException(
                $"The key file '{path}', left in the data directory by an earlier version, {problem}. The node moves key " +
                $"files into '{Name}/' only when they pass the checks a key file gets, and refuses to start otherwise: " +
                "fix or delete the file and start again.");
        }
    }

    private static string? OwnerProblem(string path, UnixFileStatus status, uint? expectedOwner) =>
        expectedOwner is { } user && status.Owner is { } owner && owner != user
            ? $"is owned by user {owner}, not by the user this node runs as ({user}). If it is the node's own, fix it with " +
              $"'chown {user} {path}'; otherwise remove it"
            : null;

    // identity.key, onion-<epoch>.state, onion-epoch.counter, and the temporary files of their interrupted writes.
    private static bool IsKeyFileName(string path)
    {
        var name = Path.GetFileName(path.AsSpan());
        return name.StartsWith(NodeIdentity.FileName, StringComparison.Ordinal) || name.StartsWith("onion-", StringComparison.Ordinal);
    }
}
