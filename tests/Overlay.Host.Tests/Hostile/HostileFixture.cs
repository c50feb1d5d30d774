using Overlay.Host.Tests.Infrastructure;
using Overlay.Identity;
using Overlay.Onion;

namespace Overlay.Host.Tests.Hostile;

/// <summary>Three real nodes shared by the malformed-input cases (each case is one short call).</summary>
public sealed class HostileFixture : IAsyncLifetime
{
    internal TestCluster Cluster { get; private set; } = null!;

    public async Task InitializeAsync() => Cluster = await TestCluster.StartAsync(3, new ClusterOptions { NodeDefaultHandler = true });

    public async Task DisposeAsync() => await Cluster.DisposeAsync();
}

/// <summary>What the hostile cases need to know about a node's wire: sizes and a header built for it.</summary>
internal static class HostileWire
{
    public static int HeaderSize(ClusterNode node) => OnionHeader.SizeFor(node.Node.State.Network);

    public static int CellSize(ClusterNode node) => node.Node.State.Network.CellSize;

    /// <summary>A valid header for the one-hop route to <paramref name="destination"/>, with its origin keys.</summary>
    public static RawTunnelKeys HeaderTo(ClusterNode destination) =>
        RawOrigin.Build(destination.Node.State.Network, [destination.Descriptor]);

    /// <summary>
    /// A header that costs the node a full X25519 agreement before its MAC fails: the version and epoch of
    /// <paramref name="valid"/>, a canonical point, random bytes after.
    /// </summary>
    public static byte[] AgreementHeader(ReadOnlySpan<byte> valid)
    {
        var header = new byte[valid.Length];
        Random.Shared.NextBytes(header);
        valid[..5].CopyTo(header);
        header[5 + 31] &= 0x7F;
        return header;
    }
}
