using System.Buffers.Binary;

namespace Overlay.Onion;

/// <summary>What <see cref="ReplayCache.TryAdd"/> found.</summary>
public enum ReplayCheck
{
    /// <summary>A tag not seen before; it is now recorded.</summary>
    Fresh,

    /// <summary>The tag was already recorded: a replayed header.</summary>
    Replayed,

    /// <summary>The cache is full: the hop refuses new tunnels in this epoch (fail closed, never evict).</summary>
    Full,
}

/// <summary>
/// The set of header tags one onion-key epoch has accepted. Bounded: when full it refuses
/// (never evicts, which would reopen replays), and it raises <see cref="NearlyFull"/> once at
/// the threshold so the node can rotate its onion key early.
/// </summary>
public sealed class ReplayCache
{
    /// <summary>Each tag costs about this many bytes of managed memory in the set.</summary>
    public const int ApproximateBytesPerEntry = 40;

    private const uint FileMagic = 0x4F525043; // "ORPC"
    private const int FileVersion = 1;

    private readonly HashSet<UInt128> _tags = [];
    private readonly Lock _lock = new();
    private bool _nearlyFullRaised;

    /// <summary>Creates a cache for up to <paramref name="capacity"/> tags.</summary>
    public ReplayCache(int capacity, double nearlyFullFraction = 0.8)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(nearlyFullFraction, 0);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(nearlyFullFraction, 1);
        Capacity = capacity;
        NearlyFullThreshold = Math.Max(1, (int)(capacity * nearlyFullFraction));
    }

    /// <summary>Raised once, outside the lock, when the count reaches <see cref="NearlyFullThreshold"/>.</summary>
    public event Action<ReplayCache>? NearlyFull;

    /// <summary>The most tags the cache holds.</summary>
    public int Capacity { get; }

    /// <summary>The count at which <see cref="NearlyFull"/> is raised.</summary>
    public int NearlyFullThreshold { get; }

    /// <summary>The number of tags recorded.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _tags.Count;
            }
        }
    }

    /// <summary>Records <paramref name="tag"/> unless it is already there or the cache is full.</summary>
    public ReplayCheck TryAdd(UInt128 tag)
    {
        bool raise;
        lock (_lock)
        {
            if (_tags.Contains(tag))
            {
                return ReplayCheck.Replayed;
            }

            if (_tags.Count >= Capacity)
            {
                return ReplayCheck.Full;
            }

            _tags.Add(tag);
            raise = !_nearlyFullRaised && _tags.Count >= NearlyFullThreshold;
            _nearlyFullRaised |= raise;
        }

        if (raise)
        {
            NearlyFull?.Invoke(this);
        }

        return ReplayCheck.Fresh;
    }

    /// <summary>Writes the tags so the epoch can survive a restart (see docs/protocol.md).</summary>
    public void Save(Stream destination)
    {
        UInt128[] snapshot;
        lock (_lock)
        {
            snapshot = [.. _tags];
        }

        Span<byte> buffer = stackalloc byte[16];
        BinaryPrimitives.WriteUInt32BigEndian(buffer, FileMagic);
        BinaryPrimitives.WriteInt32BigEndian(buffer[4..], FileVersion);
        BinaryPrimitives.WriteInt32BigEndian(buffer[8..], snapshot.Length);
        destination.Write(buffer[..12]);
        foreach (var tag in snapshot)
        {
            BinaryPrimitives.WriteUInt128BigEndian(buffer, tag);
            destination.Write(buffer);
        }
    }

    /// <summary>Reads tags written by <see cref="Save"/>; a file that does not fit the capacity is refused.</summary>
    public static ReplayCache Load(Stream source, int capacity, double nearlyFullFraction = 0.8)
    {
        Span<byte> buffer = stackalloc byte[16];
        source.ReadExactly(buffer[..12]);
        if (BinaryPrimitives.ReadUInt32BigEndian(buffer) != FileMagic || BinaryPrimitives.ReadInt32BigEndian(buffer[4..]) != FileVersion)
        {
            throw new InvalidDataException("not a replay cache file");
        }

        var count = BinaryPrimitives.ReadInt32BigEndian(buffer[8..]);
        if (count < 0 || count > capacity)
        {
            throw new InvalidDataException($"replay cache file holds {count} tags, capacity is {capacity}");
        }

        var cache = new ReplayCache(capacity, nearlyFullFraction);
        for (var i = 0; i < count; i++)
        {
            source.ReadExactly(buffer);
            cache._tags.Add(BinaryPrimitives.ReadUInt128BigEndian(buffer));
        }

        cache._nearlyFullRaised = cache._tags.Count >= cache.NearlyFullThreshold;
        return cache;
    }
}
