using System.Collections.Concurrent;
using System.Collections.Frozen;
using System.Diagnostics.Metrics;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Overlay.Errors;
using Overlay.Host.Admission;
using Overlay.Host.Link;
using Overlay.Host.Link.Tls;
using Overlay.Host.Options;
using Overlay.Host.Telemetry;
using Overlay.Identity;
using Overlay.Membership;

namespace Overlay.Host.Membership;

/// <summary>
/// The memberships this node knows in a private network (docs/protocol.md 4.1): its own, and the
/// verified ones of other nodes, learned beside their descriptors or presented on a call. In an
/// open network (no <c>Overlay:Network:Authorities</c>) everyone is a member and nothing is kept.
/// Only authority-signed memberships enter, one per node (the one valid longest), and their
/// number is bounded all the same.
/// </summary>
internal sealed class MembershipBook
{
    public const string ReasonTag = "overlay.membership.refusal";

    private readonly NodeState _node;
    private readonly TimeSpan _clockSkew;
    private readonly int _capacity;
    private readonly TimeProvider _time;
    private readonly ILogger<MembershipBook> _logger;
    private readonly WarningThrottle _throttle;
    private readonly Counter<long> _refused;
    private readonly ConcurrentDictionary<NodeId, NodeMembership> _known = new();
    private readonly ConcurrentDictionary<NodeId, MembershipRevocation> _revoked = new();
    private readonly Lock _sweepLock = new();
    private readonly Lock _persistLock = new();
    private readonly string _revocationsPath;
    private NodeMembership? _own;

    public MembershipBook(IOptions<OverlayOptions> options, NodeState node, IMeterFactory meterFactory, TimeProvider time, ILogger<MembershipBook> logger)
    {
        var value = options.Value;
        Authorities = value.Network.Authorities.Select(NodeId.Parse).ToFrozenSet();
        _node = node;
        _clockSkew = value.OnionKeys.ClockSkew;
        // A member may be known without being in the directory (a full directory, a newcomer): room for several directories' worth.
        _capacity = Math.Max(1024, value.Directory.MaxPeers * 4);
        _time = time;
        _logger = logger;
        _throttle = new WarningThrottle(time, WarningThrottle.PeerInterval);
        _refused = OverlayTelemetry.NodeMeter(meterFactory, node).CreateCounter<long>("overlay.membership.refused", "{membership}",
            "Memberships and link calls refused in a private network, by overlay.membership.refusal");
        _revocationsPath = Path.Combine(value.DataDirectory, RevocationsFileName);
        LoadRevocations();
    }

    /// <summary>The file in the data directory that keeps revocations across restarts (145-byte records, section 4.1).</summary>
    public const string RevocationsFileName = "membership-revocations.bin";

    /// <summary>Raised, outside any lock, when a revocation of a node becomes known: its peers drop it and close its links.</summary>
    public event Action<NodeId>? Revoked;

    /// <summary>The revocations to gossip (those still to be kept).</summary>
    public IReadOnlyCollection<MembershipRevocation> Revocations
    {
        get
        {
            var now = _time.GetUtcNow();
            return [.. _revoked.Values.Where(r => now <= r.Until)];
        }
    }

    /// <summary>The revocation of <paramref name="node"/>, if one is kept.</summary>
    public MembershipRevocation? RevocationOf(NodeId node) => _revoked.TryGetValue(node, out var revocation) && _time.GetUtcNow() <= revocation.Until ? revocation : null;

    /// <summary>
    /// Verifies a gossiped revocation and keeps it (persisted until it lapses); a new one drops the
    /// node's membership and raises <see cref="Revoked"/>. Returns the verification's outcome.
    /// </summary>
    public MembershipError LearnRevocation(ReadOnlySpan<byte> encoded, string source)
    {
        if (!IsPrivate)
        {
            return MembershipError.None;
        }

        if (encoded.Length == MembershipRevocation.Size && _revoked.TryGetValue(new NodeId(encoded.Slice(33, NodeId.Size)), out var held)
            && held.Encoded.Span.SequenceEqual(encoded))
        {
            return MembershipError.None; // gossip repeats what is held
        }

        var error = MembershipRevocation.TryParse(encoded, Authorities, _time.GetUtcNow(), out var revocation);
        if (error != MembershipError.None)
        {
            Refused(error);
            MembershipLog.RevocationRefused(_logger, source, error.Describe());
            return error;
        }

        Revoke(revocation!);
        return MembershipError.None;
    }

    /// <summary>Keeps <paramref name="revocation"/> (already verified, or issued here).</summary>
    public void Revoke(MembershipRevocation revocation)
    {
        if (!_revoked.ContainsKey(revocation.Node) && _revoked.Count >= _capacity)
        {
            return; // bounded: past the limit a new revocation is not kept (its authority still refuses the node's renewal)
        }

        // New, or newer than the one held (the node was admitted again after it, and is revoked anew): either
        // takes the node out as a first revocation does. An older or repeated one changes nothing, nor does a
        // newer one kept for less time: it would shorten the keeping of the held one, and let memberships that
        // one voids become valid again sooner.
        var taken = false;
        _revoked.AddOrUpdate(revocation.Node, _ => { taken = true; return revocation; }, (_, existing) =>
        {
            taken = revocation.RevokedAt > existing.RevokedAt && revocation.Until >= existing.Until;
            return taken ? revocation : existing;
        });
        if (!taken)
        {
            return;
        }

        if (_known.TryGetValue(revocation.Node, out var membership) && revocation.Voids(membership))
        {
            ((ICollection<KeyValuePair<NodeId, NodeMembership>>)_known).Remove(new(revocation.Node, membership));
        }

        SaveRevocations();
        MembershipLog.RevocationLearned(_logger, revocation.Node.ToShortString(), revocation.Authority.ToShortString());
        Revoked?.Invoke(revocation.Node);
    }

    private bool IsVoided(NodeMembership membership) => _revoked.TryGetValue(membership.Node, out var revocation) && revocation.Voids(membership);

    private void LoadRevocations()
    {
        if (!IsPrivate || !File.Exists(_revocationsPath))
        {
            return;
        }

        var bytes = File.ReadAllBytes(_revocationsPath);
        for (var offset = 0; offset + MembershipRevocation.Size <= bytes.Length; offset += MembershipRevocation.Size)
        {
            // Lapsed or (after an authority was removed) unknown ones are dropped at the next save.
            if (MembershipRevocation.TryParse(bytes.AsSpan(offset, MembershipRevocation.Size), Authorities, _time.GetUtcNow(), out var revocation) == MembershipError.None)
            {
                _revoked[revocation!.Node] = revocation;
            }
        }
    }

    private void SaveRevocations()
    {
        lock (_persistLock)
        {
            var now = _time.GetUtcNow();
            var kept = _revoked.Values.Where(r => now <= r.Until).ToArray();
            var bytes = new byte[kept.Length * MembershipRevocation.Size];
            for (var i = 0; i < kept.Length; i++)
            {
                kept[i].Encoded.Span.CopyTo(bytes.AsSpan(i * MembershipRevocation.Size));
            }

            System.IO.Directory.CreateDirectory(Path.GetDirectoryName(_revocationsPath)!);
            var temporary = _revocationsPath + ".tmp";
            File.WriteAllBytes(temporary, bytes);
            File.Move(temporary, _revocationsPath, overwrite: true);
        }
    }

    /// <summary>The network's authority keys; empty in an open network.</summary>
    public IReadOnlySet<NodeId> Authorities { get; }

    /// <summary>True when the network names authorities, so every node needs a membership.</summary>
    public bool IsPrivate => Authorities.Count > 0;

    /// <summary>This node's own membership while it is valid; null otherwise (and always in an open network).</summary>
    public NodeMembership? Own => Volatile.Read(ref _own) is { } own && own.IsValidAt(_time.GetUtcNow(), _clockSkew) && !IsVoided(own) ? own : null;

    /// <summary>How many other nodes' memberships are held.</summary>
    public int Count => _known.Count;

    /// <summary>The other nodes' memberships that are valid now.</summary>
    public IReadOnlyCollection<NodeMembership> Members
    {
        get
        {
            var now = _time.GetUtcNow();
            return [.. _known.Values.Where(m => m.IsValidAt(now, _clockSkew) && !IsVoided(m))];
        }
    }

    /// <summary>Takes <paramref name="encoded"/> as this node's membership: it must be valid and name this node at its link endpoint.</summary>
    public MembershipError SetOwn(ReadOnlySpan<byte> encoded)
    {
        var error = NodeMembership.TryParse(encoded, Authorities, _time.GetUtcNow(), _clockSkew, out var membership);
        if (error == MembershipError.None && (_node.LinkEndpoint is not { } endpoint || !membership!.Names(_node.Id, endpoint)))
        {
            error = MembershipError.WrongNode;
        }

        if (error != MembershipError.None)
        {
            return error;
        }

        Volatile.Write(ref _own, membership);
        MembershipLog.OwnMembershipSet(_logger, membership!.NotAfter.UtcDateTime, membership.Authority.ToShortString());
        return MembershipError.None;
    }

    /// <summary>
    /// Whether <paramref name="node"/> at <paramref name="endpoint"/> is a member now: always in an
    /// open network; else a held, valid membership naming both.
    /// </summary>
    public MembershipError Check(NodeId node, Uri endpoint)
    {
        if (!IsPrivate)
        {
            return MembershipError.None;
        }

        if (!_known.TryGetValue(node, out var membership))
        {
            return RevocationOf(node) is not null ? MembershipError.Revoked : MembershipError.Missing;
        }

        if (!membership.IsValidAt(_time.GetUtcNow(), _clockSkew))
        {
            return MembershipError.Expired;
        }

        if (IsVoided(membership))
        {
            return MembershipError.Revoked;
        }

        return membership.Names(node, endpoint) ? MembershipError.None : MembershipError.WrongNode;
    }

    /// <summary>The valid membership held for <paramref name="node"/>, to gossip beside its descriptor; null when none.</summary>
    public NodeMembership? Find(NodeId node) =>
        IsPrivate && _known.TryGetValue(node, out var membership) && membership.IsValidAt(_time.GetUtcNow(), _clockSkew) && !IsVoided(membership) ? membership : null;

    /// <summary>
    /// Verifies a membership that came with <paramref name="node"/>'s descriptor (endpoint
    /// <paramref name="endpoint"/>) and keeps it. In an open network nothing is required.
    /// </summary>
    public MembershipError Learn(ReadOnlySpan<byte> encoded, NodeId node, Uri endpoint, string source)
    {
        if (!IsPrivate)
        {
            return MembershipError.None;
        }

        // Gossip repeats what is held: the same bytes need no signature check.
        if (_known.TryGetValue(node, out var held) && held.Encoded.Span.SequenceEqual(encoded))
        {
            return Check(node, endpoint);
        }

        var error = Verify(encoded, out var membership);
        if (error == MembershipError.None && !membership!.Names(node, endpoint))
        {
            error = MembershipError.WrongNode;
        }

        if (error == MembershipError.None && IsVoided(membership!))
        {
            error = MembershipError.Revoked;
        }

        if (error != MembershipError.None)
        {
            // A node we already hold a valid membership for may still gossip it without one: nothing lost.
            if (error == MembershipError.Missing && Check(node, endpoint) == MembershipError.None)
            {
                return MembershipError.None;
            }

            Refused(error);
            MembershipLog.MembershipRefused(_logger, node.ToShortString(), source, error.Describe());
            return error;
        }

        Keep(membership!);
        return MembershipError.None;
    }

    /// <summary>
    /// The per-call gate of the link endpoint: in a private network the caller (the node id its TLS
    /// certificate proved) must be a member, by a membership held here or one it presents with this
    /// call (<paramref name="presented"/>, empty when none). Throws <c>PermissionDenied</c> with
    /// <see cref="TunnelErrorKind.NotAMember"/> otherwise.
    /// </summary>
    public void RequireCaller(ServerCallContext context, ReadOnlySpan<byte> presented)
    {
        if (!IsPrivate)
        {
            return;
        }

        var caller = LinkPeerIdentity.Of(context);
        var error = caller is null ? MembershipError.Missing : CallerError(caller.Value, presented);
        if (error == MembershipError.None)
        {
            return;
        }

        Refused(error);
        var label = caller?.ToShortString() ?? "(no TLS identity)";
        if (_throttle.ShouldLog(label, out var suppressed))
        {
            MembershipLog.CallRefused(_logger, context.Method, label, error.Describe(), suppressed);
        }

        throw LinkErrors.Refuse(TunnelErrorKind.NotAMember);
    }

    /// <summary>Drops memberships that expired (their nodes leave the directory at its next sweep).</summary>
    public void Sweep()
    {
        var now = _time.GetUtcNow();
        foreach (var (node, revocation) in _revoked)
        {
            if (now > revocation.Until)
            {
                ((ICollection<KeyValuePair<NodeId, MembershipRevocation>>)_revoked).Remove(new(node, revocation));
            }
        }

        foreach (var (node, membership) in _known)
        {
            if (!membership.IsValidAt(now, _clockSkew))
            {
                ((ICollection<KeyValuePair<NodeId, NodeMembership>>)_known).Remove(new(node, membership));
            }
        }
    }

    private MembershipError CallerError(NodeId caller, ReadOnlySpan<byte> presented)
    {
        if (presented.IsEmpty)
        {
            return !_known.TryGetValue(caller, out var held) || !held.IsValidAt(_time.GetUtcNow(), _clockSkew) ? MembershipError.Missing
                : IsVoided(held) ? MembershipError.Revoked
                : MembershipError.None;
        }

        var error = Verify(presented, out var membership);
        if (error == MembershipError.None && membership!.Node != caller)
        {
            error = MembershipError.WrongNode;
        }

        if (error == MembershipError.None && IsVoided(membership!))
        {
            error = MembershipError.Revoked;
        }

        if (error == MembershipError.None)
        {
            Keep(membership!);
        }

        return error;
    }

    private MembershipError Verify(ReadOnlySpan<byte> encoded, out NodeMembership? membership)
    {
        membership = null;
        if (encoded.IsEmpty)
        {
            return MembershipError.Missing;
        }

        return NodeMembership.TryParse(encoded, Authorities, _time.GetUtcNow(), _clockSkew, out membership);
    }

    // The one valid longest wins; a full book first drops what expired, then refuses newcomers (fail closed).
    private void Keep(NodeMembership membership)
    {
        if (!_known.ContainsKey(membership.Node) && _known.Count >= _capacity)
        {
            lock (_sweepLock)
            {
                Sweep();
            }

            if (_known.Count >= _capacity)
            {
                return;
            }
        }

        _known.AddOrUpdate(membership.Node, membership, (_, held) => membership.NotAfter >= held.NotAfter ? membership : held);
    }

    private void Refused(MembershipError error) => _refused.Add(1, new KeyValuePair<string, object?>(ReasonTag, error.ToTag()));
}
