using System.Net;
using System.Net.Sockets;

namespace Overlay.Host.Link;

/// <summary>
/// How the node groups remote addresses. Past the first hop the origin is hidden by design, so the
/// only honest key for fairness is the previous hop, and identities are free to mint in an open
/// network: the key is the address block one party can cheaply hold. In public space that is an
/// IPv4 /24 or an IPv6 /56 (one host, one home or one small provider allocation); inside loopback,
/// private and link-local ranges every address is its own key, since those blocks hold many
/// unrelated machines of one operator.
/// </summary>
internal static class PeerAddress
{
    private static readonly IPNetwork[] NonPublic =
    [
        IPNetwork.Parse("0.0.0.0/8"),
        IPNetwork.Parse("10.0.0.0/8"),
        IPNetwork.Parse("100.64.0.0/10"),
        IPNetwork.Parse("127.0.0.0/8"),
        IPNetwork.Parse("169.254.0.0/16"),
        IPNetwork.Parse("172.16.0.0/12"),
        IPNetwork.Parse("192.168.0.0/16"),
        IPNetwork.Parse("::/128"),
        IPNetwork.Parse("::1/128"),
        IPNetwork.Parse("fc00::/7"),
        IPNetwork.Parse("fe80::/10"),
    ];

    /// <summary>The address as IPv4 when it is an IPv4-mapped IPv6 address, so both spellings key alike.</summary>
    public static IPAddress Normalize(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;

    /// <summary>True for loopback, private (RFC 1918, RFC 4193), shared (RFC 6598), link-local and unspecified addresses.</summary>
    public static bool IsNonPublic(IPAddress address)
    {
        address = Normalize(address);
        foreach (var network in NonPublic)
        {
            if (network.Contains(address))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// The fairness key of a remote address: its /24 (IPv4) or /56 (IPv6) in public space, the exact
    /// address in non-public ranges; "unknown" when the transport gave no address.
    /// </summary>
    public static string FairnessKey(IPAddress? address)
    {
        if (address is null)
        {
            return "unknown";
        }

        address = Normalize(address);
        if (IsNonPublic(address))
        {
            return address.ToString();
        }

        return Prefix(address, address.AddressFamily == AddressFamily.InterNetwork ? 24 : 56).ToString();
    }

    /// <summary>
    /// The block one party is assumed to control for route diversity: an IPv4 /16 or an IPv6 /32
    /// (a route takes at most one hop from each).
    /// </summary>
    public static IPNetwork DiversityBlock(IPAddress address)
    {
        address = Normalize(address);
        return Prefix(address, address.AddressFamily == AddressFamily.InterNetwork ? 16 : 32);
    }

    /// <summary>The network of <paramref name="prefixLength"/> bits that holds <paramref name="address"/>.</summary>
    public static IPNetwork Prefix(IPAddress address, int prefixLength)
    {
        var bytes = address.GetAddressBytes();
        for (var bit = prefixLength; bit < bytes.Length * 8; bit++)
        {
            bytes[bit / 8] &= (byte)~(0x80 >> (bit % 8));
        }

        return new IPNetwork(new IPAddress(bytes), prefixLength);
    }
}
