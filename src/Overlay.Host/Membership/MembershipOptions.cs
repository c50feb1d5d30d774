namespace Overlay.Host.Membership;

/// <summary>
/// How this node takes part in a private network (<c>Overlay:Membership</c>): as an authority
/// that issues memberships, and as a node that joins and renews its own.
/// </summary>
public sealed class MembershipOptions
{
    /// <summary>
    /// Makes this node an authority: a directory holding its Ed25519 signing key (<c>keys/identity.key</c>,
    /// mode 0600, created on first start), whose public key must be one of <c>Overlay:Network:Authorities</c>.
    /// Mount it only on the authority. Default: none.
    /// </summary>
    public string? AuthorityKeyDirectory { get; set; }

    /// <summary>How long a membership this authority issues is valid. Default 1 day; 10 minutes to 7 days.</summary>
    public TimeSpan Lifetime { get; set; } = TimeSpan.FromDays(1);

    /// <summary>The join tokens this authority accepts (it alone counts their uses).</summary>
    public List<JoinTokenOptions> Tokens { get; set; } = [];

    /// <summary>The link endpoint of the authority this node joins through (https). Default: none (no joining).</summary>
    public string? JoinUrl { get; set; }

    /// <summary>The node id the authority at <see cref="JoinUrl"/> must prove with its link certificate (64 hex digits).</summary>
    public string? JoinNodeId { get; set; }

    /// <summary>A file holding the join token (a mounted Secret); needed for the first join, not to renew.</summary>
    public string? TokenFile { get; set; }

    /// <summary>How long to wait after a failed join or renewal before the next attempt. Default 30 s.</summary>
    public TimeSpan RetryInterval { get; set; } = TimeSpan.FromSeconds(30);
}

/// <summary>One join token an authority accepts.</summary>
public sealed class JoinTokenOptions
{
    /// <summary>The token itself, 32 to 256 characters of a CSPRNG's output (e.g. <c>openssl rand -hex 32</c>).</summary>
    public string Value { get; set; } = "";

    /// <summary>How many memberships it may admit in all (renewals do not count). At least 1.</summary>
    public int Uses { get; set; } = 1;

    /// <summary>When it stops admitting anyone.</summary>
    public DateTimeOffset ExpiresAt { get; set; }

    /// <summary>When set, the one node id (64 hex digits) it admits.</summary>
    public string? NodeId { get; set; }
}
