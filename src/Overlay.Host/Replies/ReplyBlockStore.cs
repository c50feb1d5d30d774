using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Overlay.Errors;
using Overlay.Host.Directory;
using Overlay.Host.Options;
using Overlay.Identity;
using Overlay.Onion;
using Overlay.Replies;

namespace Overlay.Host.Replies;

/// <summary>
/// The reply blocks this node made (docs/protocol.md §7.8): each block's secret is kept, in memory and in
/// the key directory, until its reply comes or it expires, at most <c>Overlay:Replies:MaxOutstanding</c>
/// at once (blocks made and replies not yet collected together). A reply id is looked up by comparing it
/// with every kept id in constant time, so how long the search takes says nothing of which block matched.
/// A secret is taken (and its file deleted) before the reply is even read: a block opens one reply only.
/// </summary>
internal sealed class ReplyBlockStore : IDisposable
{
    private readonly NodeState _node;
    private readonly RouteSelector _routes;
    private readonly ReplyOptions _options;
    private readonly string _dataDirectory;
    private readonly TimeProvider _time;
    private readonly ILogger<ReplyBlockStore> _logger;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private int _reserved;
    private bool _disposed;

    public ReplyBlockStore(NodeState node, RouteSelector routes, IOptions<OverlayOptions> options, TimeProvider time, ILogger<ReplyBlockStore> logger)
    {
        _node = node;
        _routes = routes;
        _options = options.Value.Replies;
        _dataDirectory = options.Value.DataDirectory;
        _time = time;
        _logger = logger;
        var restored = ReplySecretFiles.Load(_dataDirectory, time.GetUtcNow());
        foreach (var problem in restored.Discarded)
        {
            RepliesLog.SecretDiscarded(logger, problem);
        }

        foreach (var (handle, secret) in restored.Secrets)
        {
            _entries[handle] = new Entry(handle, secret);
        }

        if (restored.Secrets.Count > 0 || restored.Expired > 0)
        {
            RepliesLog.SecretsRestored(logger, restored.Secrets.Count, restored.Expired);
        }
    }

    /// <summary>The largest reply this node accepts over its blocks.</summary>
    public int MaxReplyBytes => _options.MaxReplyBytes;

    /// <summary>Blocks kept and replies not yet collected.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _entries.Count;
            }
        }
    }

    /// <summary>
    /// Makes a block over <paramref name="relays"/> relays, none of them in <paramref name="avoid"/> (the
    /// forward route a reply must not share), and keeps its secret. Waits for enough peers until
    /// <paramref name="cancellationToken"/>; refused with <see cref="TunnelErrorKind.LimitExceeded"/> when the store is full.
    /// </summary>
    public async Task<OutstandingReply> CreateAsync(int relays, IReadOnlyCollection<NodeId> avoid, CancellationToken cancellationToken)
    {
        if (relays < 0 || relays > _node.Network.MaxRelays)
        {
            throw new TunnelException(TunnelErrorKind.LimitExceeded, 0, $"a reply route has 0 to {_node.Network.MaxRelays} relays, not {relays}");
        }

        var route = await _routes.SelectReplyRouteAsync(relays, avoid, cancellationToken);
        var now = _time.GetUtcNow();
        var handle = ReplySecretFiles.NewHandle();
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            RemoveExpired(now);
            if (_entries.Count + _reserved >= _options.MaxOutstanding)
            {
                throw new TunnelException(TunnelErrorKind.LimitExceeded, 0,
                    $"this node keeps {_options.MaxOutstanding} reply blocks already (Overlay:Replies:MaxOutstanding); wait for their replies or expiry");
            }

            // A place held while the block is built and saved outside the lock (an agreement per hop, a flushed write).
            _reserved++;
        }

        ReplyBlock? block = null;
        ReplyBlockSecret? secret = null;
        try
        {
            block = ReplyBlocks.Create(_node.HeaderBuilder, route, DeadlineClasses.FromTimeSpan(_options.ReplyDeadline), now + _options.MaxLifetime, out secret);
            if (block.ExpiresAt <= now)
            {
                throw new TunnelException(TunnelErrorKind.Expired, 0, "an onion key on the reply route has expired; try again once the directory has its successor");
            }

            ReplySecretFiles.Save(_dataDirectory, handle, secret);
        }
        catch (Exception exception)
        {
            block?.Dispose();
            secret?.Dispose();
            Release();
            if (exception is IOException or UnauthorizedAccessException)
            {
                throw new TunnelException(TunnelErrorKind.Internal, 0, $"the reply block's secret could not be saved in the key directory: {exception.Message}", exception);
            }

            throw;
        }

        lock (_lock)
        {
            _reserved--;
            if (!_disposed)
            {
                _entries[handle] = new Entry(handle, secret);
                return new OutstandingReply(handle, block, [.. route.Select(d => d.Id)]);
            }
        }

        // The node stopped meanwhile: its file stays for the next start, these keys go now.
        block.Dispose();
        secret.Dispose();
        throw new ObjectDisposedException(nameof(ReplyBlockStore));

        void Release()
        {
            lock (_lock)
            {
                _reserved--;
            }
        }
    }

    /// <summary>
    /// Takes the secret of the block whose reply id is <paramref name="replyId"/>, deleting its file first
    /// (single use). <see cref="TunnelErrorKind.DestinationRefused"/> for an id this node does not hold (or
    /// holds no more), <see cref="TunnelErrorKind.Expired"/> past the block's expiry.
    /// </summary>
    public TunnelErrorKind TryTake(ReadOnlySpan<byte> replyId, out ReplyBlockSecret? secret, out string? handle)
    {
        secret = null;
        handle = null;
        var now = _time.GetUtcNow();
        lock (_lock)
        {
            if (_disposed)
            {
                // The node is stopping: refused as any hop that is shutting down refuses.
                return TunnelErrorKind.Busy;
            }

            Entry? found = null;
            // Every kept id is compared, matched or not: no early exit.
            foreach (var entry in _entries.Values)
            {
                if (entry.Secret is { } candidate && candidate.Matches(replyId))
                {
                    found = entry;
                }
            }

            if (found is null)
            {
                return TunnelErrorKind.DestinationRefused;
            }

            if (found.Secret!.ExpiresAt <= now)
            {
                Forget(found, TunnelErrorKind.Expired);
                return TunnelErrorKind.Expired;
            }

            // The file goes before the secret leaves the store: a crash from here on cannot bring the block back.
            try
            {
                ReplySecretFiles.Delete(_dataDirectory, found.Handle);
            }
            catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
            {
                RepliesLog.SecretNotDeleted(_logger, found.Handle, exception);
                return TunnelErrorKind.Internal;
            }

            secret = found.Secret;
            found.Secret = null;
            handle = found.Handle;
            return TunnelErrorKind.None;
        }
    }

    /// <summary>
    /// Reads the whole reply of the block <paramref name="handle"/> from <paramref name="incoming"/> (at most
    /// <c>Overlay:Replies:MaxReplyBytes</c>, else <see cref="TunnelErrorKind.LimitExceeded"/>) and delivers it.
    /// </summary>
    public async Task ReceiveAsync(Tunnels.IncomingTunnel incoming, string handle, CancellationToken cancellationToken)
    {
        var buffer = new byte[_options.MaxReplyBytes + 1];
        var length = 0;
        int read;
        while ((read = await incoming.ReadAsync(buffer.AsMemory(length), cancellationToken)) > 0)
        {
            length += read;
            if (length > _options.MaxReplyBytes)
            {
                throw new TunnelException(TunnelErrorKind.LimitExceeded, 0, $"a reply is at most {_options.MaxReplyBytes} bytes (Overlay:Replies:MaxReplyBytes)");
            }
        }

        Deliver(handle, buffer.AsSpan(0, length).ToArray());
    }

    /// <summary>Hands the reply of the block <paramref name="handle"/> to whoever waits for it, or keeps it for them.</summary>
    public void Deliver(string handle, byte[] reply)
    {
        lock (_lock)
        {
            if (_entries.TryGetValue(handle, out var entry))
            {
                if (!entry.Waited)
                {
                    RepliesLog.ReplyUnclaimed(_logger, handle);
                }

                entry.Reply.TrySetResult(new ReceivedReply(handle, reply, _time.GetUtcNow()));
            }
        }
    }

    /// <summary>The reply taken but not delivered (it failed on its way in): the block is spent, nobody will get one.</summary>
    public void Fail(string handle, TunnelErrorKind kind)
    {
        lock (_lock)
        {
            if (_entries.Remove(handle, out var entry) && entry.Waited)
            {
                entry.Reply.TrySetException(new TunnelException(kind, 0, $"the reply over this block failed on its way in ({kind.ToTag()}); the block is spent"));
            }
        }
    }

    /// <summary>
    /// Waits for the reply of the block <paramref name="handle"/> (also one made before a restart) and forgets
    /// the block once it is returned. Fails with <see cref="TunnelErrorKind.Expired"/> once the block expires
    /// unanswered, <see cref="TunnelErrorKind.DestinationRefused"/> for a handle this node does not hold.
    /// When <paramref name="cancellationToken"/> ends the wait, the block stays until its expiry unless
    /// <paramref name="abandonOnCancel"/>, which forgets it (a late reply is then refused).
    /// </summary>
    public async Task<ReceivedReply> WaitAsync(string handle, bool abandonOnCancel, CancellationToken cancellationToken)
    {
        Entry entry;
        lock (_lock)
        {
            if (!_entries.TryGetValue(handle, out entry!))
            {
                throw new TunnelException(TunnelErrorKind.DestinationRefused, 0, "this node holds no reply block by that handle (answered and collected, expired, or never made)");
            }

            entry.Waited = true;
        }

        var expiresAt = entry.ExpiresAt;
        using var expiry = new CancellationTokenSource(Max(expiresAt - _time.GetUtcNow(), TimeSpan.Zero), _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, expiry.Token);
        try
        {
            var reply = await entry.Reply.Task.WaitAsync(linked.Token);
            Remove(entry);
            return reply;
        }
        catch (OperationCanceledException) when (expiry.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            lock (_lock)
            {
                if (entry.Reply.Task.IsCompletedSuccessfully)
                {
                    _entries.Remove(entry.Handle);
                    return entry.Reply.Task.Result;
                }

                // This waiter reports the expiry itself; nobody else observes the entry's task.
                entry.Waited = false;
                Forget(entry, TunnelErrorKind.Expired);
            }

            throw new TunnelException(TunnelErrorKind.Expired, 0, $"no reply came over the block before its expiry ({expiresAt:O})");
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            lock (_lock)
            {
                entry.Waited = false;
                if (abandonOnCancel && entry.Secret is not null)
                {
                    Forget(entry, TunnelErrorKind.Cancelled);
                }
            }

            throw;
        }
    }

    /// <summary>Forgets the block <paramref name="handle"/> if it is still kept (its reply, if one comes, is then refused).</summary>
    public void Abandon(string handle)
    {
        lock (_lock)
        {
            if (_entries.TryGetValue(handle, out var entry))
            {
                Forget(entry, TunnelErrorKind.Cancelled);
            }
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
            foreach (var entry in _entries.Values)
            {
                entry.Secret?.Dispose();
                entry.Secret = null;
            }

            _entries.Clear();
        }
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    private void Remove(Entry entry)
    {
        lock (_lock)
        {
            _entries.Remove(entry.Handle);
        }
    }

    // Under the lock. Blocks past their expiry go (file and keys); so do replies nobody collected by then.
    private void RemoveExpired(DateTimeOffset now)
    {
        List<Entry>? expired = null;
        foreach (var entry in _entries.Values)
        {
            if (entry.ExpiresAt <= now)
            {
                (expired ??= []).Add(entry);
            }
        }

        foreach (var entry in expired ?? [])
        {
            Forget(entry, TunnelErrorKind.Expired);
        }
    }

    // Under the lock: the block's file and keys go; a waiter learns why.
    private void Forget(Entry entry, TunnelErrorKind kind)
    {
        _entries.Remove(entry.Handle);
        if (entry.Secret is { } secret)
        {
            secret.Dispose();
            entry.Secret = null;
            try
            {
                ReplySecretFiles.Delete(_dataDirectory, entry.Handle);
            }
            catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
            {
                // The block is forgotten here; its file goes at the next start, as expired, or as unusable.
                RepliesLog.SecretNotDeleted(_logger, entry.Handle, exception);
            }
        }

        // Only a waiter observes the failure (an unobserved one would surface as an unobserved task exception).
        if (entry.Waited)
        {
            entry.Reply.TrySetException(new TunnelException(kind, 0, kind == TunnelErrorKind.Expired
                ? "the reply block expired unanswered"
                : "the reply block was given up"));
        }
    }

    private sealed class Entry(string handle, ReplyBlockSecret secret)
    {
        public string Handle { get; } = handle;

        public DateTimeOffset ExpiresAt { get; } = secret.ExpiresAt;

        // Null once taken by its reply (or forgotten).
        public ReplyBlockSecret? Secret { get; set; } = secret;

        public bool Waited { get; set; }

        public TaskCompletionSource<ReceivedReply> Reply { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
