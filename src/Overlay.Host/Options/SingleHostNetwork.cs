namespace Overlay.Host.Options;

/// <summary>
/// The configuration a network whose nodes all run on this host needs (the devnet, the tests, the
/// benchmarks, a ping into a local network): loopback peers may be dialed, and the limits that assume
/// one party per address (peers and directory calls per address block, one hop per block in a
/// route) are lifted, since here every node shares 127.0.0.1. Never for a public network.
/// </summary>
public static class SingleHostNetwork
{
    /// <summary>The configuration keys and values (keys of the <c>Overlay</c> section).</summary>
    public static IReadOnlyDictionary<string, string?> Configuration { get; } = new Dictionary<string, string?>
    {
        ["Overlay:Link:AllowedPeerNetworks:0"] = "127.0.0.0/8",
        ["Overlay:Link:AllowedPeerNetworks:1"] = "::1/128",
        ["Overlay:Directory:RouteDiversity"] = "false",
        ["Overlay:Directory:MaxPeersPerAddressBlock"] = "1000000",
        ["Overlay:Directory:CallsPerSecondPerSource"] = "1000000",
        ["Overlay:Directory:CallBurstPerSource"] = "1000000",
    };

    /// <summary>A new dictionary: <see cref="Configuration"/>, then <paramref name="configuration"/> over it.</summary>
    public static Dictionary<string, string?> With(IReadOnlyDictionary<string, string?> configuration)
    {
        var merged = new Dictionary<string, string?>(Configuration);
        foreach (var (key, value) in configuration)
        {
            merged[key] = value;
        }

        return merged;
    }
}
