using System.Collections.Immutable;
using Overlay.Identity;

namespace Overlay.Onion;

/// <summary>An onion key and the replay cache of its epoch: they live, persist and die together.</summary>
public sealed class OnionKeyEpoch : IDisposable
{
    /// <summary>Pairs a key with its cache.</summary>
    public OnionKeyEpoch(OnionKey key, ReplayCache cache)
    {
        Key = key;
        ReplayCache = cache;
    }

    /// <summary>The onion key.</summary>
    public OnionKey Key { get; }

    /// <summary>The tags of the headers accepted under this key.</summary>
    public ReplayCache ReplayCache { get; }

    /// <summary>The epoch number.</summary>
    public uint Epoch => Key.Epoch;

    /// <inheritdoc />
    public void Dispose() => Key.Dispose();
}

/// <summary>
/// The onion keys a node accepts headers for: the current one and, during the overlap window
/// after a rotation, older ones, so tunnels set up against a just-replaced descriptor survive.
/// Lock-free for readers: header processing only reads an immutable snapshot.
/// </summary>
public sealed class OnionKeyRing : IDisposable
{
    private ImmutableArray<OnionKeyEpoch> _epochs = [];
    private readonly Lock _writeLock = new();

    /// <summary>The newest epoch, or null before the first key is added.</summary>
    public OnionKeyEpoch? Current
    {
        get
        {
            var epochs = _epochs;
            return epochs.IsEmpty ? null : epochs[0];
        }
    }

    /// <summary>All epochs held, newest first.</summary>
    public ImmutableArray<OnionKeyEpoch> Epochs => _epochs;

    /// <summary>The epoch with number <paramref name="epoch"/>, or null.</summary>
    public OnionKeyEpoch? Find(uint epoch)
    {
        foreach (var entry in _epochs)
        {
            if (entry.Epoch == epoch)
            {
                return entry;
            }
        }

        return null;
    }

    /// <summary>Makes <paramref name="entry"/> the current epoch; earlier ones stay until retired.</summary>
    public void Add(OnionKeyEpoch entry)
    {
        lock (_writeLock)
        {
            if (Find(entry.Epoch) is not null)
            {
                throw new InvalidOperationException($"epoch {entry.Epoch} is already held");
            }

            _epochs = _epochs.Insert(0, entry);
        }
    }

    /// <summary>Drops an epoch: headers built for it are refused from now on. Returns false if not held.</summary>
    public bool Retire(uint epoch)
    {
        OnionKeyEpoch? removed = null;
        lock (_writeLock)
        {
            if (Find(epoch) is { } found)
            {
                removed = found;
                _epochs = _epochs.Remove(found);
            }
        }

        // A header being processed may still hold the old snapshot: the key's safe handle defers the
        // free until a running agreement returns, and a later one fails as an unknown epoch.
        removed?.Dispose();
        return removed is not null;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        ImmutableArray<OnionKeyEpoch> epochs;
        lock (_writeLock)
        {
            epochs = _epochs;
            _epochs = [];
        }

        foreach (var entry in epochs)
        {
            entry.Dispose();
        }
    }
}
