using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;
using Overlay.Onion;

namespace Overlay.Identity;

/// <summary>A state file <see cref="OnionKeyStore.LoadAndConsume"/> deleted without loading it, and why.</summary>
/// <param name="Path">The file's path.</param>
/// <param name="Reason">Why it was not loaded (never contains key material).</param>
public sealed record DiscardedOnionState(string Path, string Reason);

/// <summary>What <see cref="OnionKeyStore.LoadAndConsume"/> found.</summary>
public sealed class OnionKeyLoadResult
{
    internal OnionKeyLoadResult(IReadOnlyList<OnionKeyEpoch> epochs, IReadOnlyList<uint> expiredEpochs, IReadOnlyList<DiscardedOnionState> discarded)
    {
        Epochs = epochs;
        ExpiredEpochs = expiredEpochs;
        Discarded = discarded;
    }

    /// <summary>The epochs reloaded with their replay caches, oldest first (add them to the ring in this order).</summary>
    public IReadOnlyList<OnionKeyEpoch> Epochs { get; }

    /// <summary>Epochs whose key had expired beyond the overlap window; their files were deleted.</summary>
    public IReadOnlyList<uint> ExpiredEpochs { get; }

    /// <summary>Corrupt, unsafe or unexpected files that were deleted without being loaded: report them.</summary>
    public IReadOnlyList<DiscardedOnionState> Discarded { get; }
}

/// <summary>
/// Persists onion keys only together with their replay caches (guarantee 4, docs/protocol.md): after a
/// restart a node accepts headers only for epochs whose cache it reloaded, so a header it
/// processed before the restart cannot be replayed after it.
/// </summary>
/// <remarks>
/// <para>
/// One file per epoch, <c>onion-&lt;epoch&gt;.state</c>, owner-only, written atomically: the 4 ASCII
/// bytes <c>OVOK</c>, format version (1 byte), epoch (uint32), valid-from and expires-at (int64
/// UTC ticks), the 32-byte raw X25519 private key, the replay cache as
/// <see cref="ReplayCache.Save"/> writes it, then a SHA-256 of all the preceding bytes. Integers
/// are big-endian.
/// </para>
/// <para>
/// A state file is good for one restart: <see cref="LoadAndConsume"/> deletes every file it reads.
/// Were it kept, a node that later crashed without saving would reload a cache missing the tags
/// accepted since, and accept those headers again.
/// </para>
/// </remarks>
public static class OnionKeyStore
{
    /// <summary>The name of the epoch counter file in the data directory's <see cref="KeyDirectory"/>.</summary>
    public const string CounterFileName = "onion-epoch.counter";

    private const string StatePrefix = "onion-";
    private const string StateSuffix = ".state";
    private const byte FormatVersion = 1;
    private const int KeySize = 32;
    private const int DigestSize = 32;

    // Magic (4), version (1), epoch (4), valid-from (8), expires-at (8), private key (32).
    private const int HeaderSize = 57;
    private const int KeyOffset = HeaderSize - KeySize;

    // What ReplayCache.Save writes before the tags, and per tag.
    private const int CacheHeaderSize = 12;
    private const int TagSize = 16;

    private const int CounterFileSize = 9;

    // Serialises NextEpoch within the process; one data directory belongs to one node process.
    private static readonly Lock CounterLock = new();

    private static ReadOnlySpan<byte> StateMagic => "OVOK"u8;

    private static ReadOnlySpan<byte> CounterMagic => "OVEC"u8;

    /// <summary>The state file name for <paramref name="epoch"/>.</summary>
    public static string StateFileName(uint epoch) => string.Create(CultureInfo.InvariantCulture, $"{StatePrefix}{epoch}{StateSuffix}");

    /// <summary>
    /// Deletes the state files in the key directory of <paramref name="dataDirectory"/>, then writes
    /// one per epoch, so the directory holds exactly <paramref name="epochs"/>. Call it once, at a
    /// graceful shutdown, after the node has stopped processing headers: tags recorded after the save
    /// are lost.
    /// </summary>
    /// <remarks>
    /// An exportable onion key allows one export (an archive): a key can be
    /// saved once in the life of a process, which is the only safe use (see <see cref="LoadAndConsume"/>).
    /// </remarks>
    /// <exception cref="InvalidOperationException">
    /// A key was not created exportable (nothing is written or deleted then), or was already saved.
    /// </exception>
    /// <exception cref="ArgumentException">Two entries have the same epoch.</exception>
    /// <exception cref="InvalidOperationException">The key directory fails its checks (<see cref="KeyDirectory"/>).</exception>
    public static void Save(string dataDirectory, IEnumerable<OnionKeyEpoch> epochs)
    {
        ArgumentException.ThrowIfNullOrEmpty(dataDirectory);
        ArgumentNullException.ThrowIfNull(epochs);
        var list = epochs.ToList();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var entry in list)
        {
            if (!names.Add(StateFileName(entry.Epoch)))
            {
                throw new ArgumentException($"epoch {entry.Epoch} is listed twice", nameof(epochs));
            }

            if (!entry.Key.Exportable)
            {
                throw new InvalidOperationException(
                    $"the onion key of epoch {entry.Epoch} was not created exportable, so it cannot be saved; " +
                    "create onion keys with OnionKey.Create(..., exportable: true) to persist them");
            }
        }

        var directory = KeyDirectory.Open(dataDirectory);

        // Old files go first: if a write below fails, the directory holds only files written by
        // this call, never an older file whose cache lacks tags accepted since.
        foreach (var path in Directory.EnumerateFiles(directory, StatePrefix + "*" + StateSuffix).ToList())
        {
            File.Delete(path);
        }

        foreach (var entry in list)
        {
            WriteState(Path.Combine(directory, StateFileName(entry.Epoch)), entry);
        }
    }

    /// <summary>
    /// Loads every state file in the key directory of <paramref name="dataDirectory"/> whose key has
    /// not expired beyond the overlap window at <paramref name="now"/>, and deletes every state file it
    /// finds, loaded or not. Corrupt or unsafe files (for example readable by group or others, so the key may
    /// have leaked) are deleted and listed in <see cref="OnionKeyLoadResult.Discarded"/>.
    /// </summary>
    /// <exception cref="IOException">A state file could not be deleted after reading; nothing is returned then.</exception>
    /// <exception cref="InvalidOperationException">The key directory fails its checks (<see cref="KeyDirectory"/>).</exception>
    public static OnionKeyLoadResult LoadAndConsume(string dataDirectory, OnionKeyOptions options, DateTimeOffset now)
    {
        ArgumentException.ThrowIfNullOrEmpty(dataDirectory);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Validate() is { } problem)
        {
            throw new ArgumentException(problem, nameof(options));
        }

        var loaded = new List<OnionKeyEpoch>();
        var expired = new List<uint>();
        var discarded = new List<DiscardedOnionState>();
        if (!Directory.Exists(dataDirectory))
        {
            return new OnionKeyLoadResult(loaded, expired, discarded);
        }

        var directory = KeyDirectory.Open(dataDirectory);
        try
        {
            // Leftovers of a save that was interrupted: never complete, and they may hold a key.
            foreach (var path in Directory.EnumerateFiles(directory, StatePrefix + "*" + StateSuffix + ".*" + PrivateFile.TempSuffix))
            {
                Consume(path);
                discarded.Add(new DiscardedOnionState(path, "incomplete file left by an interrupted save"));
            }

            foreach (var path in Directory.EnumerateFiles(directory, StatePrefix + "*" + StateSuffix).Order(StringComparer.Ordinal))
            {
                var outcome = ReadState(path, options, now, out var entry, out var epoch, out var reason);
                try
                {
                    Consume(path);
                }
                catch
                {
                    entry?.Dispose();
                    throw;
                }

                switch (outcome)
                {
                    case StateOutcome.Loaded:
                        loaded.Add(entry!);
                        break;
                    case StateOutcome.Expired:
                        expired.Add(epoch);
                        break;
                    default:
                        discarded.Add(new DiscardedOnionState(path, reason));
                        break;
                }
            }
        }
        catch
        {
            foreach (var entry in loaded)
            {
                entry.Dispose();
            }

            throw;
        }

        loaded.Sort((a, b) => a.Epoch.CompareTo(b.Epoch));
        expired.Sort();
        return new OnionKeyLoadResult(loaded, expired, discarded);
    }

    /// <summary>
    /// Returns the next onion epoch number (1 the first time) and records it, so a restarted node
    /// never reuses an epoch number.
    /// </summary>
    /// <exception cref="InvalidDataException">The counter file is corrupt.</exception>
    /// <exception cref="InvalidOperationException">The key directory fails its checks (<see cref="KeyDirectory"/>).</exception>
    public static uint NextEpoch(string dataDirectory)
    {
        ArgumentException.ThrowIfNullOrEmpty(dataDirectory);
        lock (CounterLock)
        {
            var path = Path.Combine(KeyDirectory.Open(dataDirectory), CounterFileName);
            var last = ReadCounter(path);
            if (last == uint.MaxValue)
            {
                throw new InvalidOperationException($"the onion epoch counter in '{path}' is exhausted");
            }

            var next = last + 1;
            Span<byte> buffer = stackalloc byte[CounterFileSize];
            CounterMagic.CopyTo(buffer);
            buffer[CounterMagic.Length] = FormatVersion;
            BinaryPrimitives.WriteUInt32BigEndian(buffer[(CounterMagic.Length + 1)..], next);
            using (var writer = PrivateFile.BeginWrite(path))
            {
                writer.Stream.Write(buffer);
                writer.Commit(overwrite: true);
            }

            return next;
        }
    }

    private static uint ReadCounter(string path)
    {
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0);
        }
        catch (FileNotFoundException)
        {
            return 0;
        }

        using (stream)
        {
            Span<byte> buffer = stackalloc byte[CounterFileSize];
            if (stream.Length != CounterFileSize
                || stream.ReadAtLeast(buffer, CounterFileSize, throwOnEndOfStream: false) != CounterFileSize
                || !buffer[..CounterMagic.Length].SequenceEqual(CounterMagic)
                || buffer[CounterMagic.Length] != FormatVersion)
            {
                throw new InvalidDataException(
                    $"The onion epoch counter '{path}' is corrupt. Restore it from a backup if you can; deleting it " +
                    "restarts epoch numbers at 1, which peers holding an older descriptor may confuse with an old key.");
            }

            return BinaryPrimitives.ReadUInt32BigEndian(buffer[(CounterMagic.Length + 1)..]);
        }
    }

    private static void WriteState(string path, OnionKeyEpoch entry)
    {
        var key = entry.Key;
        using var writer = PrivateFile.BeginWrite(path);
        Span<byte> header = stackalloc byte[HeaderSize];
        try
        {
            StateMagic.CopyTo(header);
            header[4] = FormatVersion;
            BinaryPrimitives.WriteUInt32BigEndian(header[5..], key.Epoch);
            BinaryPrimitives.WriteInt64BigEndian(header[9..], key.ValidFrom.UtcTicks);
            BinaryPrimitives.WriteInt64BigEndian(header[17..], key.ExpiresAt.UtcTicks);
            try
            {
                key.ArchivePrivateKey(header[KeyOffset..]);
            }
            catch (InvalidOperationException e)
            {
                throw new InvalidOperationException(
                    $"the onion key of epoch {key.Epoch} was already saved: a key can be archived once, so save onion keys " +
                    "once, at shutdown, after header processing has stopped", e);
            }

            writer.WriteAt(header, 0);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(header);
        }

        var stream = writer.Stream;
        stream.Position = HeaderSize;
        entry.ReplayCache.Save(stream);
        stream.Flush();
        Span<byte> digest = stackalloc byte[DigestSize];
        HashPrefix(stream.SafeFileHandle, RandomAccess.GetLength(stream.SafeFileHandle), digest);
        stream.Write(digest);
        writer.Commit(overwrite: true);
    }

    private enum StateOutcome
    {
        Loaded,
        Expired,
        Discarded,
    }

    /// <summary>Reads one state file: <paramref name="entry"/> when loaded, <paramref name="reason"/> when discarded.</summary>
    private static StateOutcome ReadState(
        string path, OnionKeyOptions options, DateTimeOffset now, out OnionKeyEpoch? entry, out uint epoch, out string reason)
    {
        entry = null;
        epoch = 0;
        reason = "";
        var name = Path.GetFileName(path);
        var named = 0u;
        if (name.Length < StatePrefix.Length + StateSuffix.Length
            || !uint.TryParse(name.AsSpan(StatePrefix.Length, name.Length - StatePrefix.Length - StateSuffix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out named)
            || StateFileName(named) != name)
        {
            return Discard(out reason, "not a state file name this node writes");
        }

        try
        {
            using var stream = PrivateFile.OpenRead(path, out var looseMode);
            if (looseMode is { } mode)
            {
                return Discard(out reason, $"accessible by group or others (mode {PrivateFile.ToOctal(mode)}), so the onion key may have leaked");
            }

            var length = stream.Length;
            var maxLength = HeaderSize + CacheHeaderSize + ((long)options.ReplayCacheCapacity * TagSize) + DigestSize;
            if (length < HeaderSize + CacheHeaderSize + DigestSize || length > maxLength)
            {
                return Discard(out reason, $"{length} bytes, not a size a state file for a replay cache of capacity {options.ReplayCacheCapacity} has");
            }

            var handle = stream.SafeFileHandle;
            Span<byte> digest = stackalloc byte[DigestSize];
            Span<byte> stored = stackalloc byte[DigestSize];
            HashPrefix(handle, length - DigestSize, digest);
            PrivateFile.ReadExactly(handle, stored, length - DigestSize);
            if (!CryptographicOperations.FixedTimeEquals(digest, stored))
            {
                return Discard(out reason, "checksum mismatch");
            }

            Span<byte> header = stackalloc byte[HeaderSize];
            try
            {
                PrivateFile.ReadExactly(handle, header, 0);
                if (!header[..4].SequenceEqual(StateMagic) || header[4] != FormatVersion)
                {
                    return Discard(out reason, "not an onion key state file of format version 1");
                }

                epoch = BinaryPrimitives.ReadUInt32BigEndian(header[5..]);
                var validFrom = BinaryPrimitives.ReadInt64BigEndian(header[9..]);
                var expiresAt = BinaryPrimitives.ReadInt64BigEndian(header[17..]);
                if (epoch != named)
                {
                    return Discard(out reason, $"holds epoch {epoch}, but its name says {named}");
                }

                if (validFrom is < 0 || expiresAt < validFrom || expiresAt > DateTimeOffset.MaxValue.UtcTicks)
                {
                    return Discard(out reason, "invalid validity times");
                }

                var expires = new DateTimeOffset(expiresAt, TimeSpan.Zero);
                if (now - expires > options.OverlapWindow)
                {
                    return StateOutcome.Expired;
                }

                stream.Position = HeaderSize;
                var cache = ReplayCache.Load(stream, options.ReplayCacheCapacity, options.RotateWhenReplayCacheFraction);
                if (stream.Position != length - DigestSize)
                {
                    return Discard(out reason, "the replay cache does not fill the file");
                }

                var key = OnionKey.Import(header[KeyOffset..], epoch, new DateTimeOffset(validFrom, TimeSpan.Zero), expires, exportable: true);
                entry = new OnionKeyEpoch(key, cache);
                return StateOutcome.Loaded;
            }
            finally
            {
                CryptographicOperations.ZeroMemory(header);
            }
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException)
        {
            return Discard(out reason, e.Message);
        }
    }

    private static StateOutcome Discard(out string reason, string why)
    {
        reason = why;
        return StateOutcome.Discarded;
    }

    private static void Consume(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException(
                $"Could not delete the onion key state file '{path}' after reading it. A state file is good for one " +
                "restart only (reusing it could let replayed headers through), so the node does not start: make the " +
                "key directory writable by the node, or delete the file.", e);
        }
    }

    private static void HashPrefix(SafeFileHandle handle, long length, Span<byte> digest)
    {
        using var hash = System.Security.Cryptography.IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            for (long offset = 0; offset < length;)
            {
                var chunk = buffer.AsSpan(0, (int)Math.Min(buffer.Length, length - offset));
                PrivateFile.ReadExactly(handle, chunk, offset);
                hash.AppendData(chunk);
                offset += chunk.Length;
            }

            hash.GetHashAndReset(digest);
        }
        finally
        {
            // The buffer passed over the private key.
            CryptographicOperations.ZeroMemory(buffer);
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
