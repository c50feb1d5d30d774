using System.Globalization;
using Overlay.Host.Directory;
using Overlay.Identity;

namespace Overlay.Host.Tests.Membership;

/// <summary>How the membership tests set up an authority and the nodes that join through it.</summary>
internal static class JoinSetup
{
    public const int MembershipSetEvent = 352;
    public const int RenewalFailedEvent = 356;

    public static string NewToken() => Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));

    /// <summary>An authority key directory under <paramref name="root"/>, made before the network starts so its public key can be configured everywhere.</summary>
    public static (string Directory, NodeId Key) AuthorityKey(DirectoryInfo root, string name)
    {
        var directory = Path.Combine(root.FullName, name);
        using var key = NodeIdentity.LoadOrCreate(directory);
        return (directory, key.Id);
    }

    /// <summary>A one-node cluster whose node 0 is the authority holding the key in <paramref name="directory"/>, with the tokens <paramref name="tokens"/> adds.</summary>
    public static ClusterOptions AuthorityCluster(string directory, NodeId key, Action<Dictionary<string, string?>>? tokens = null, bool controlEndpoints = false) => new()
    {
        ControlEndpoints = controlEndpoints,
        Configuration = new Dictionary<string, string?> { ["Overlay:Network:Authorities:0"] = key.ToString() },
        ConfigureNode = (index, configuration) =>
        {
            if (index == 0)
            {
                configuration["Overlay:Membership:AuthorityKeyDirectory"] = directory;
                tokens?.Invoke(configuration);
            }
        },
    };

    public static void AddToken(Dictionary<string, string?> configuration, int index, string value, int uses, DateTimeOffset expiresAt, NodeId? node = null)
    {
        var key = string.Create(CultureInfo.InvariantCulture, $"Overlay:Membership:Tokens:{index}");
        configuration[key + ":Value"] = value;
        configuration[key + ":Uses"] = uses.ToString(CultureInfo.InvariantCulture);
        configuration[key + ":ExpiresAt"] = expiresAt.ToString("o", CultureInfo.InvariantCulture);
        if (node is { } id)
        {
            configuration[key + ":NodeId"] = id.ToString();
        }
    }

    /// <summary>The configuration of a node that joins through <paramref name="authority"/>, with <paramref name="token"/> in a file when not empty.</summary>
    public static Dictionary<string, string?> Joiner(DirectoryInfo root, ClusterNode authority, string token, TimeSpan? retryInterval = null)
    {
        var joiner = new Dictionary<string, string?>
        {
            ["Overlay:Membership:JoinUrl"] = authority.LinkEndpoint.ToString(),
            ["Overlay:Membership:JoinNodeId"] = authority.Id.ToString(),
            // Retries soon after a refusal by default: the tests admit some joiners after a first refusal.
            ["Overlay:Membership:RetryInterval"] = (retryInterval ?? TimeSpan.FromMilliseconds(200)).ToString("c", CultureInfo.InvariantCulture),
        };
        if (token.Length > 0)
        {
            var file = Path.Combine(root.FullName, "token-" + Guid.NewGuid().ToString("N"));
            File.WriteAllText(file, token + "\n");
            joiner["Overlay:Membership:TokenFile"] = file;
        }

        return joiner;
    }

    public static Task WaitForRefusalAsync(TestCluster cluster, ClusterNode node, string reason, CancellationToken cancellationToken) =>
        cluster.Logs.WaitForAsync(e => e.Node == node.Name && e.EventId.Id == RenewalFailedEvent && e.Message.Contains(reason, StringComparison.Ordinal),
            $"{node.Name}'s join refused as {reason}", cancellationToken);

    public static Task WaitUpAsync(ClusterNode observer, ClusterNode peer, CancellationToken cancellationToken) =>
        TestCluster.WaitForDirectoryAsync(observer, d => d.Find(peer.Id)?.Status == PeerStatus.Up, $"{peer.Name} up", cancellationToken);
}
