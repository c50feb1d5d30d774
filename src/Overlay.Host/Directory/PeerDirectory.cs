using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Overlay.Host.Link;
using Overlay.Host.Membership;
using Overlay.Membership;
using Overlay.Host.Options;
using Overlay.Host.Telemetry;
using Overlay.Identity;

namespace Overlay.Host.Directory;

/// <summary>How this node sees a peer.</summary>
public enum PeerStatus
{
    /// <summary>Confirmed and answering.</summary>
    Up,

    /// <summary>The last contact failed; not used for new routes until it answers again.</summary>
    Suspect,

    /// <summary>Failed repeatedly; forgotten after a while unless it comes back.</summary>
    Down,

    /// <summary>Removed from the directory (expired descriptor, forgotten, banned).</summary>
    Gone,
}

/// <summary>A peer's status changed.</summary>
/// <param name="Id">The peer.</param>
/// <param name="Status">Its new status.</param>
/// <param name="Endpoint">Its link endpoint.</param>
public sealed record PeerStatusChange(NodeId Id, PeerStatus Status, Uri Endpoint);

/// <summary>One peer as the directory knows it.</summary>
/// <param name="Descriptor">Its confirmed descriptor.</param>
/// <param name="Status">Up, suspect or down.</param>
/// <param name="ConsecutiveFailures">Failed contacts since the last success.</param>
/// <param name="LastSeen">The last successful contact.</param>
public sealed record PeerInfo(NodeDescriptor Descriptor, PeerStatus Status, int ConsecutiveFailures, DateTimeOffset LastSeen)
{
    /// <summary>The address the peer's endpoint proof reached (what its fairness key and route diversity block are taken from); null if unknown.</summary>
    public IPAddress? Address { get; init; }

    /// <summary>When this node admitted the peer (kept across updates): routes prefer peers the rest of the network has had time to learn.</summary>
    public DateTimeOffset FirstSeen { get; init; }
}

/// <summary>
/// The peers this node has confirmed (their endpoint proved their identity), with their status
/// from link outcomes and probes. Publishes every status change: route selection waits on it,
/// and the control API streams it. Unconfirmed descriptors never enter. Identities are free to
/// mint, so admission is bounded per address block (one machine cannot fill the directory) and,
/// when full, a newcomer displaces a peer of the most crowded block, never a seed nor a peer that
/// carries this node's tunnels. In a private network a peer is admitted, sampled (for gossip and
/// routes) and relayed to only while it holds a valid membership (<see cref="MembershipBook"/>).
/// </summary>
public sealed class PeerDirectory
{
    private readonly ConcurrentDictionary<NodeId, PeerInfo> _peers = new();
    private readonly ConcurrentDictionary<NodeId, byte> _banned = new();
    private readonly NodeState _node;
    private readonly DirectoryOptions _options;
    private readonly HashSet<NodeId> _allowed;
    private readonly HashSet<Uri> _seeds;
    private readonly PeerChannels _channels;
    private readonly MembershipBook _memberships;
    private readonly TimeProvider _time;
    private readonly ILogger<PeerDirectory> _logger;
    private readonly Lock _changeLock = new();
    private readonly Lock _admissionLock = new();
    private TaskCompletionSource _changed = NewSignal();

    internal PeerDirectory(NodeState node, IOptions<OverlayOptions> options, PeerChannels channels, MembershipBook memberships, TimeProvider time, ILogger<PeerDirectory> logger)
    {
        _node = node;
        _options = options.Value.Directory;
        _allowed = [.. _options.AllowedNodeIds.Select(NodeId.Parse)];
        _seeds = [.. _options.Seeds.Select(s => new Uri(s))];
        _channels = channels;
        _memberships = memberships;
        _time = time;
        _logger = logger;
        // A revoked node leaves at once: no route, no gossip, and the links this node dialed to it close.
        _memberships.Revoked += id =>
        {
            Remove(id);
            _channels.Close(id);
        };
    }

    /// <summary>Raised for every status change, outside any lock.</summary>
    public event Action<PeerStatusChange>? StatusChanged;

    /// <summary>All known peers.</summary>
    public IReadOnlyCollection<PeerInfo> Peers => [.. _peers.Values];

    /// <summary>How many peers are known (without copying the directory).</summary>
    public int Count => _peers.Count;

    /// <summary>Peers that are up.</summary>
    public int UpCount => _peers.Values.Count(p => p.Status == PeerStatus.Up);

    /// <summary>The peer, if known.</summary>
    public PeerInfo? Find(NodeId id) => _peers.GetValueOrDefault(id);

    /// <summary>The peer, if known and (in a private network) a member now: for routes.</summary>
    public PeerInfo? FindMember(NodeId id) => _peers.TryGetValue(id, out var peer) && IsMember(peer) ? peer : null;

    private bool IsMember(PeerInfo peer) => _memberships.Check(peer.Descriptor.Id, peer.Descriptor.Endpoint) == MembershipError.None;

    /// <summary>True when the admission policy lets <paramref name="id"/> in.</summary>
    public bool IsAdmitted(NodeId id) => id != _node.Id && (_allowed.Count == 0 || _allowed.Contains(id)) && !_banned.ContainsKey(id);

    /// <summary>Peers refused until the node restarts.</summary>
    public IReadOnlyCollection<NodeId> Banned => [.. _banned.Keys];

    /// <summary>Forgets a peer and refuses it until the node restarts; true if it was known.</summary>
    public bool Ban(NodeId id)
    {
        _banned.TryAdd(id, 0);
        return Remove(id);
    }

    /// <summary>True when this descriptor adds nothing to what is known (same or older).</summary>
    public bool IsKnown(NodeDescriptor descriptor) =>
        _peers.TryGetValue(descriptor.Id, out var known)
        && known.Descriptor.PublishedAt >= descriptor.PublishedAt
        && known.Status == PeerStatus.Up;

    /// <summary>The link endpoint of a known peer (a member, in a private network), for relaying to it.</summary>
    public bool TryGetLinkEndpoint(NodeId id, out Uri endpoint)
    {
        if (_peers.TryGetValue(id, out var peer) && IsMember(peer))
        {
            endpoint = peer.Descriptor.Endpoint;
            return true;
        }

        endpoint = null!;
        return false;
    }

    /// <summary>
    /// Adds or refreshes a descriptor whose endpoint proof reached <paramref name="address"/>; the
    /// peer is up. A new peer is refused (false) when its address block holds
    /// Overlay:Directory:MaxPeersPerAddressBlock peers, or when the directory is full and no block
    /// is crowded enough to give up a peer for it.
    /// </summary>
    internal bool AddConfirmed(NodeDescriptor descriptor, IPAddress? address)
    {
        if (!IsAdmitted(descriptor.Id))
        {
            return false;
        }

        if (_memberships.Check(descriptor.Id, descriptor.Endpoint) is var membership and not MembershipError.None)
        {
            DirectoryLog.PeerRefused(_logger, PeerAddress.FairnessKey(address), $"node {descriptor.Id.ToShortString()}: {membership.Describe()}");
            return false;
        }

        var now = _time.GetUtcNow();
        PeerStatus? previous = null;
        PeerInfo? evicted = null;
        lock (_admissionLock)
        {
            if (!_peers.ContainsKey(descriptor.Id) && !MakeRoom(address, out evicted))
            {
                return false;
            }

            _peers.AddOrUpdate(
                descriptor.Id,
                _ => new PeerInfo(descriptor, PeerStatus.Up, 0, now) { Address = address, FirstSeen = now },
                (_, existing) =>
                {
                    previous = existing.Status;
                    var newer = descriptor.PublishedAt >= existing.Descriptor.PublishedAt ? descriptor : existing.Descriptor;
                    return new PeerInfo(newer, PeerStatus.Up, 0, now) { Address = address ?? existing.Address, FirstSeen = existing.FirstSeen };
                });
        }

        if (evicted is not null)
        {
            DirectoryLog.PeerEvicted(_logger, evicted.Descriptor.Id.ToShortString(), PeerAddress.FairnessKey(evicted.Address));
            Publish(new PeerStatusChange(evicted.Descriptor.Id, PeerStatus.Gone, evicted.Descriptor.Endpoint));
        }

        if (previous != PeerStatus.Up)
        {
            Publish(new PeerStatusChange(descriptor.Id, PeerStatus.Up, descriptor.Endpoint));
        }

        return true;
    }

    /// <summary>True when the peer may not be evicted: a configured seed, or a peer this node's open tunnels run through.</summary>
    private bool IsPinned(PeerInfo peer) => _seeds.Contains(peer.Descriptor.Endpoint) || _channels.OpenCalls(peer.Descriptor.Id, peer.Descriptor.Endpoint) > 0;

    // Under the admission lock. O(peers), and only for a proven newcomer.
    private bool MakeRoom(IPAddress? address, out PeerInfo? evicted)
    {
        evicted = null;
        var key = PeerAddress.FairnessKey(address);
        var crowds = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var peer in _peers.Values)
        {
            var peerKey = PeerAddress.FairnessKey(peer.Address);
            crowds[peerKey] = crowds.GetValueOrDefault(peerKey) + 1;
        }

        var own = crowds.GetValueOrDefault(key);
        if (own >= _options.MaxPeersPerAddressBlock)
        {
            DirectoryLog.PeerRefused(_logger, key, $"its address block already has {own} peers (Overlay:Directory:MaxPeersPerAddressBlock)");
            return false;
        }

        if (_peers.Count < _options.MaxPeers)
        {
            return true;
        }

        // Full: a peer of the most crowded block makes room, if that block stays at least as large as
        // the newcomer's (anything less would only trade one block's place for another's).
        PeerInfo? victim = null;
        var victimCrowd = own + 1;
        foreach (var peer in _peers.Values)
        {
            var crowd = crowds[PeerAddress.FairnessKey(peer.Address)];
            if (crowd > victimCrowd || (crowd == victimCrowd && victim is not null && IsBetterVictim(peer, victim)))
            {
                if (!IsPinned(peer))
                {
                    victim = peer;
                    victimCrowd = crowd;
                }
            }
        }

        if (victim is null || !((ICollection<KeyValuePair<NodeId, PeerInfo>>)_peers).Remove(new(victim.Descriptor.Id, victim)))
        {
            DirectoryLog.PeerRefused(_logger, key, $"the directory holds Overlay:Directory:MaxPeers ({_options.MaxPeers}) peers and no address block is more crowded than the newcomer's");
            return false;
        }

        evicted = victim;
        return true;
    }

    // Down before suspect before up, then the longest unheard.
    private static bool IsBetterVictim(PeerInfo candidate, PeerInfo current) =>
        candidate.Status != current.Status ? candidate.Status > current.Status : candidate.LastSeen < current.LastSeen;

    /// <summary>A contact with the peer succeeded.</summary>
    internal void ReportSuccess(NodeId id)
    {
        if (_peers.TryGetValue(id, out var peer) && (peer.Status != PeerStatus.Up || peer.ConsecutiveFailures != 0))
        {
            Update(id, p => p with { Status = PeerStatus.Up, ConsecutiveFailures = 0, LastSeen = _time.GetUtcNow() });
        }
    }

    /// <summary>A contact with the peer failed: suspect first, down after repeated failures.</summary>
    public void ReportFailure(NodeId id) => Update(id, p =>
    {
        var failures = p.ConsecutiveFailures + 1;
        return p with { ConsecutiveFailures = failures, Status = failures >= _options.FailuresBeforeDown ? PeerStatus.Down : PeerStatus.Suspect };
    });

    /// <summary>Forgets a peer.</summary>
    public bool Remove(NodeId id)
    {
        if (_peers.TryRemove(id, out var removed))
        {
            Publish(new PeerStatusChange(id, PeerStatus.Gone, removed.Descriptor.Endpoint));
            return true;
        }

        return false;
    }

    /// <summary>Drops peers whose onion key (or, in a private network, membership) expired and down peers not heard from for a while.</summary>
    internal void Expire(TimeSpan clockSkew)
    {
        _memberships.Sweep();
        var now = _time.GetUtcNow();
        foreach (var peer in _peers.Values)
        {
            var expired = peer.Descriptor.OnionExpiresAt + clockSkew < now || !IsMember(peer);
            var forgotten = peer.Status == PeerStatus.Down && now - peer.LastSeen > _options.ForgetDownAfter;
            // Remove exactly the entry looked at: a fresher one added meanwhile stays.
            if ((expired || forgotten) && ((ICollection<KeyValuePair<NodeId, PeerInfo>>)_peers).Remove(new(peer.Descriptor.Id, peer)))
            {
                Publish(new PeerStatusChange(peer.Descriptor.Id, PeerStatus.Gone, peer.Descriptor.Endpoint));
            }
        }
    }

    /// <summary>
    /// Up to <paramref name="count"/> random peers in the given statuses, members only in a private
    /// network (a CSPRNG: nobody should predict whom this node picks).
    /// </summary>
    internal List<PeerInfo> Sample(int count, params PeerStatus[] statuses)
    {
        var candidates = _peers.Values.Where(p => statuses.Contains(p.Status) && IsMember(p)).ToArray();
        // A partial Fisher-Yates shuffle: uniform, and only as many draws as peers taken.
        var taken = Math.Min(count, candidates.Length);
        for (var i = 0; i < taken; i++)
        {
            var j = RandomNumberGenerator.GetInt32(i, candidates.Length);
            (candidates[i], candidates[j]) = (candidates[j], candidates[i]);
        }

        return [.. candidates.AsSpan(0, taken)];
    }

    /// <summary>Completes once <paramref name="condition"/> holds, checking it at every status change.</summary>
    public async Task WaitUntilAsync(Func<PeerDirectory, bool> condition, CancellationToken cancellationToken)
    {
        while (true)
        {
            // Take the signal before looking, so a change between the two is not missed.
            var changed = WaitForChangeAsync(cancellationToken);
            if (condition(this))
            {
                return;
            }

            await changed;
        }
    }

    /// <summary>Completes at the next status change (or when <paramref name="cancellationToken"/> fires).</summary>
    public Task WaitForChangeAsync(CancellationToken cancellationToken)
    {
        Task changed;
        lock (_changeLock)
        {
            changed = _changed.Task;
        }

        return changed.WaitAsync(cancellationToken);
    }

    private void Update(NodeId id, Func<PeerInfo, PeerInfo> change)
    {
        while (_peers.TryGetValue(id, out var current))
        {
            var updated = change(current);
            if (_peers.TryUpdate(id, updated, current))
            {
                if (updated.Status != current.Status)
                {
                    Publish(new PeerStatusChange(id, updated.Status, updated.Descriptor.Endpoint));
                }

                return;
            }
        }
    }

    private void Publish(PeerStatusChange change)
    {
        Log.PeerStatusChanged(_logger, change.Id.ToShortString(), change.Status.ToString().ToLowerInvariant());
        TaskCompletionSource signal;
        lock (_changeLock)
        {
            signal = _changed;
            _changed = NewSignal();
        }

        signal.TrySetResult();
        StatusChanged?.Invoke(change);
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
