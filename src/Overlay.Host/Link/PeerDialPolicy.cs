using System.Net;
using Overlay.Host.Options;

namespace Overlay.Host.Link;

/// <summary>Why an address was not dialed.</summary>
internal enum DialRefusal
{
    /// <summary>Dialing is allowed.</summary>
    None,

    /// <summary>Loopback, private, shared, link-local, unspecified, multicast or reserved, and not in Overlay:Link:AllowedPeerNetworks.</summary>
    NonPublic,

    /// <summary>In Overlay:Link:RefusedPeerNetworks.</summary>
    RefusedNetwork,

    /// <summary>A cleartext (http) endpoint, while this node's own links use TLS: no downgrade.</summary>
    Cleartext,
}

/// <summary>
/// Which addresses this node dials. Any peer can gossip any endpoint, so without this every node
/// would send requests into its operator's own networks on a stranger's word. The check is on the
/// address actually dialed, after name resolution, so a name that resolves (or rebinds) to a
/// refused address gains nothing.
/// </summary>
internal sealed class PeerDialPolicy
{
    // Beyond PeerAddress.IsNonPublic: multicast, reserved and broadcast addresses are never peers.
    private static readonly IPNetwork[] NeverPeers = [IPNetwork.Parse("224.0.0.0/3"), IPNetwork.Parse("ff00::/8")];

    private readonly IPNetwork[] _allowed;
    private readonly IPNetwork[] _refused;

    public PeerDialPolicy(LinkEndpointOptions options)
    {
        _allowed = [.. options.AllowedPeerNetworks.Select(n => IPNetwork.Parse(n))];
        _refused = [.. options.RefusedPeerNetworks.Select(n => IPNetwork.Parse(n))];
    }

    /// <summary>Whether <paramref name="address"/> may be dialed, and if not, why.</summary>
    public DialRefusal Check(IPAddress address)
    {
        address = PeerAddress.Normalize(address);
        if (Contains(_refused, address))
        {
            return DialRefusal.RefusedNetwork;
        }

        if (Contains(_allowed, address))
        {
            return DialRefusal.None;
        }

        return PeerAddress.IsNonPublic(address) || Contains(NeverPeers, address) ? DialRefusal.NonPublic : DialRefusal.None;
    }

    private static bool Contains(IPNetwork[] networks, IPAddress address)
    {
        foreach (var network in networks)
        {
            if (network.Contains(address))
            {
                return true;
            }
        }

        return false;
    }
}

/// <summary>Refusal reasons as metric tag values and log text.</summary>
internal static class DialRefusals
{
    public static string ToTag(this DialRefusal refusal) => refusal switch
    {
        DialRefusal.NonPublic => "non-public",
        DialRefusal.RefusedNetwork => "refused-network",
        DialRefusal.Cleartext => "cleartext",
        _ => "none",
    };

    public static string Describe(this DialRefusal refusal) => refusal switch
    {
        DialRefusal.NonPublic => "a non-public address not in Overlay:Link:AllowedPeerNetworks",
        DialRefusal.RefusedNetwork => "in Overlay:Link:RefusedPeerNetworks",
        DialRefusal.Cleartext => "a cleartext endpoint, and this node's links use TLS",
        _ => "allowed",
    };
}

/// <summary>A dial refused by <see cref="PeerDialPolicy"/> or for its scheme: no connection was attempted.</summary>
internal sealed class PeerDialRefusedException : IOException
{
    public PeerDialRefusedException(string host, IPAddress address, DialRefusal refusal)
        : base($"{host} resolves to {address}, {refusal.Describe()}: not dialed") => Refusal = refusal;

    public PeerDialRefusedException(Uri endpoint)
        : base($"{endpoint} is {DialRefusal.Cleartext.Describe()}: not dialed") => Refusal = DialRefusal.Cleartext;

    public DialRefusal Refusal { get; }
}
