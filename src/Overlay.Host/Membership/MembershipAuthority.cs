using System.Security.Cryptography;
using System.Text;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Overlay.Host.Link.Tls;
using Overlay.Host.Options;
using Overlay.Identity;
using Overlay.Membership;
using Overlay.Protocol.V1;

namespace Overlay.Host.Membership;

/// <summary>
/// The authority role (<c>Overlay:Membership:AuthorityKeyDirectory</c>): issues memberships to nodes
/// that join with one of its tokens, or renew with a membership it issued. The caller is the node
/// id its link certificate proved, and the membership names that id at its descriptor's endpoint.
/// Tokens are counted here alone, so no other authority can spend them.
/// </summary>
internal sealed class MembershipAuthority : IDisposable
{
    private readonly NodeIdentity? _key;
    private readonly IReadOnlySet<NodeId> _self;
    private readonly IReadOnlyList<JoinTokenOptions> _tokens;
    private readonly TokenLedger? _ledger;
    private readonly HashSet<NodeId> _admitted = [];
    private readonly Lock _admittedLock = new();
    private readonly string _admittedPath;
    private readonly NodeState _node;
    private readonly MembershipBook _book;
    private readonly OverlayOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<MembershipAuthority> _logger;

    public MembershipAuthority(IOptions<OverlayOptions> options, NodeState node, MembershipBook book, TimeProvider time, ILogger<MembershipAuthority> logger)
    {
        _options = options.Value;
        _node = node;
        _book = book;
        _time = time;
        _logger = logger;
        _tokens = _options.Membership.Tokens;
        if (_options.Membership.AuthorityKeyDirectory is { } directory)
        {
            _key = NodeIdentity.LoadOrCreate(directory);
            if (!_options.Network.Authorities.Contains(_key.Id.ToString(), StringComparer.OrdinalIgnoreCase))
            {
                var id = _key.Id;
                _key.Dispose();
                throw new OptionsValidationException(OverlayOptions.SectionName, typeof(OverlayOptions),
                    [$"Overlay:Membership:AuthorityKeyDirectory holds authority key {id}, which is not one of Overlay:Network:Authorities"]);
            }

            _ledger = new TokenLedger(_options.DataDirectory);
        }

        _admittedPath = Path.Combine(_options.DataDirectory, AdmittedFileName);
        if (_key is not null && File.Exists(_admittedPath))
        {
            foreach (var line in File.ReadAllLines(_admittedPath))
            {
                if (NodeId.TryParse(line.Trim(), out var id))
                {
                    _admitted.Add(id);
                }
            }
        }

        _self = _key is null ? new HashSet<NodeId>() : new HashSet<NodeId> { _key.Id };
        if (_key is not null)
        {
            _book.Revoked += CancelAdmission;
        }
    }

    /// <summary>The file in the data directory listing the node ids admitted without a token, one a line.</summary>
    public const string AdmittedFileName = "membership-admitted.txt";

    /// <summary>The node ids an operator admitted without a token.</summary>
    public IReadOnlyCollection<NodeId> Admitted
    {
        get
        {
            lock (_admittedLock)
            {
                return [.. _admitted];
            }
        }
    }

    /// <summary>Lets <paramref name="node"/> join without a token (persisted). Null, or why not.</summary>
    public JoinRefusal? Admit(NodeId node)
    {
        if (_key is null)
        {
            return JoinRefusal.NotAnAuthority;
        }

        if (_book.RevocationOf(node) is not null)
        {
            return JoinRefusal.Revoked;
        }

        SetAdmitted(node, admitted: true);
        return null;
    }

    // True when the set changed (and was saved).
    private bool SetAdmitted(NodeId node, bool admitted)
    {
        lock (_admittedLock)
        {
            if (!(admitted ? _admitted.Add(node) : _admitted.Remove(node)))
            {
                return false;
            }

            var temporary = _admittedPath + ".tmp";
            File.WriteAllLines(temporary, _admitted.Select(id => id.ToString()));
            File.Move(temporary, _admittedPath, overwrite: true);
            return true;
        }
    }

    // A revocation by any authority ends this authority's standing admission of the node: once the
    // revocation lapses the node is not let back in unless an operator admits it anew.
    // It runs inside the book's Revoked event: a file error is logged here, so it neither skips the event's
    // other subscribers nor reaches the gossip that delivered the revocation (the id stays refused while the
    // revocation is kept, and the operator is told the file still lists it).
    private void CancelAdmission(NodeId node)
    {
        try
        {
            if (SetAdmitted(node, admitted: false))
            {
                MembershipLog.AdmissionCancelled(_logger, node.ToShortString());
            }
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            MembershipLog.AdmissionCancelFailed(_logger, node.ToShortString(), _admittedPath, exception);
        }
    }

    /// <summary>True when this node holds an authority key.</summary>
    public bool IsAuthority => _key is not null;

    /// <summary>This authority's public key, if it is one.</summary>
    public NodeId? Key => _key?.Id;

    /// <summary>A membership of <paramref name="node"/> at <paramref name="endpoint"/>, valid from a clock skew ago for <c>Overlay:Membership:Lifetime</c>.</summary>
    public NodeMembership Issue(NodeId node, Uri endpoint)
    {
        var key = _key ?? throw new InvalidOperationException("this node is not an authority");
        var now = _time.GetUtcNow();
        // Backdated by the skew so a peer whose clock lags accepts it at once; the span stays within the maximum.
        var lifetime = _options.Membership.Lifetime;
        var backdate = TimeSpan.FromTicks(Math.Min(_options.OnionKeys.ClockSkew.Ticks, (NodeMembership.MaxValidity - lifetime).Ticks));
        return NodeMembership.Issue(key, node, endpoint, now - backdate, now + lifetime);
    }

    /// <summary>
    /// Revokes <paramref name="node"/>: a signed revocation kept (and gossiped) until every membership
    /// any authority could have issued it before now has expired; the node's renewals are refused.
    /// </summary>
    public MembershipRevocation Revoke(NodeId node)
    {
        var key = _key ?? throw new InvalidOperationException("this node is not an authority");
        var now = _time.GetUtcNow();
        // The format's maximum, not this authority's Lifetime: another authority may issue longer memberships,
        // which must not become valid again (and renewable without a token) when the revocation lapses.
        var keep = NodeMembership.MaxValidity + _options.OnionKeys.ClockSkew;
        var revocation = MembershipRevocation.Issue(key, node, now, now + (keep < MembershipRevocation.MaxKeep ? keep : MembershipRevocation.MaxKeep));
        SetAdmitted(node, admitted: false);
        _book.Revoke(revocation);
        return revocation;
    }

    /// <summary>Answers a Join call: checks the caller and its token (or current membership) and issues a membership.</summary>
    public JoinResponse Join(JoinRequest request, ServerCallContext context)
    {
        if (_key is null)
        {
            throw JoinRefusal.NotAnAuthority.ToException();
        }

        var caller = LinkPeerIdentity.Of(context);
        var error = NodeDescriptor.TryParse(request.SignedDescriptor.Span, _node.Network, _time.GetUtcNow(), _options.OnionKeys.ClockSkew, out var descriptor);
        var refusal = caller is null ? JoinRefusal.NotTheCaller
            : error != DescriptorError.None ? JoinRefusal.BadDescriptor
            : !CryptographicOperations.FixedTimeEquals(descriptor!.Id.AsSpan(), caller.Value.AsSpan()) ? JoinRefusal.NotTheCaller
            : Authorize(caller.Value, request);
        if (refusal is { } refused)
        {
            MembershipLog.JoinRefused(_logger, caller?.ToShortString() ?? "(no TLS identity)", refused.ToTag());
            throw refused.ToException();
        }

        var membership = Issue(descriptor!.Id, descriptor.Endpoint);
        MembershipLog.MembershipIssued(_logger, descriptor.Id.ToShortString(), descriptor.Endpoint.ToString(), membership.NotAfter.UtcDateTime);
        return new JoinResponse { Membership = Google.Protobuf.ByteString.CopyFrom(membership.Encoded.Span) };
    }

    // Null when the caller may have a membership.
    private JoinRefusal? Authorize(NodeId caller, JoinRequest request)
    {
        if (_book.RevocationOf(caller) is not null)
        {
            return JoinRefusal.Revoked;
        }

        // Renewal: a valid membership this authority issued to the caller needs no token.
        if (!request.Membership.IsEmpty
            && NodeMembership.TryParse(request.Membership.Span, _self, _time.GetUtcNow(), _options.OnionKeys.ClockSkew, out var current) == MembershipError.None
            && current!.Node == caller)
        {
            return null;
        }

        lock (_admittedLock)
        {
            if (_admitted.Contains(caller))
            {
                return null; // admitted by an operator: no token needed
            }
        }

        if (request.Token.Length == 0)
        {
            return JoinRefusal.NoToken;
        }

        var presented = Encoding.UTF8.GetBytes(request.Token);
        JoinTokenOptions? token = null;
        foreach (var candidate in _tokens)
        {
            // Every token is compared, in constant time each: the time taken says nothing about which matched.
            if (CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(candidate.Value), presented))
            {
                token = candidate;
            }
        }

        if (token is null)
        {
            return JoinRefusal.UnknownToken;
        }

        if (_time.GetUtcNow() >= token.ExpiresAt)
        {
            return JoinRefusal.TokenExpired;
        }

        if (token.NodeId is { } bound && NodeId.Parse(bound) != caller)
        {
            return JoinRefusal.TokenForAnotherNode;
        }

        return _ledger!.TrySpend(token.Value, token.Uses) ? null : JoinRefusal.TokenExhausted;
    }

    public void Dispose()
    {
        _book.Revoked -= CancelAdmission;
        _key?.Dispose();
    }
}
