using Overlay.Host.Link;
using Overlay.Identity;

namespace Overlay.Host.Tests.Directory;

/// <summary>The pooled channel map forgets idle channels and never keeps a failed creation.</summary>
public sealed class PooledChannelTests
{
    private static readonly Uri First = new("http://198.51.100.1:7400/");
    private static readonly Uri Second = new("http://198.51.100.2:7400/");
    private static readonly NodeId FirstId = new(Enumerable.Repeat((byte)1, NodeId.Size).ToArray());
    private static readonly NodeId SecondId = new(Enumerable.Repeat((byte)2, NodeId.Size).ToArray());

    [Fact]
    public void An_idle_channel_is_closed_and_forgotten()
    {
        using var parts = new DirectoryParts();
        var client = parts.Channels.Client(FirstId, First);
        Assert.Same(client, parts.Channels.Client(FirstId, First));
        Assert.Equal(1, parts.Channels.PooledCount);

        parts.Time.Advance(PeerChannels.PooledIdleTimeout + TimeSpan.FromSeconds(1));
        // Any use sweeps when a sweep is due.
        parts.Channels.Client(SecondId, Second);

        Assert.Equal(1, parts.Channels.PooledCount);
        Assert.NotSame(client, parts.Channels.Client(FirstId, First));
        Assert.Equal(2, parts.Channels.PooledCount);
    }

    [Fact]
    public void A_channel_carrying_a_call_is_kept_until_the_call_ends()
    {
        using var parts = new DirectoryParts();
        // A cancelled token: the call is made and counted, never sent.
        var call = parts.Channels.Client(FirstId, First).Relay(cancellationToken: new CancellationToken(canceled: true));
        Assert.Equal(1, parts.Channels.OpenCalls(FirstId, First));

        parts.Time.Advance(PeerChannels.PooledIdleTimeout * 3);
        parts.Channels.SweepIdle();
        Assert.Equal(1, parts.Channels.PooledCount);

        call.Dispose();
        call.Dispose(); // counted once
        Assert.Equal(0, parts.Channels.OpenCalls(FirstId, First));
        parts.Time.Advance(PeerChannels.PooledIdleTimeout);
        parts.Channels.SweepIdle();
        Assert.Equal(0, parts.Channels.PooledCount);
    }

    [Fact]
    public void A_borrowed_channel_is_kept_while_lent_but_its_idle_life_is_not_extended()
    {
        using var parts = new DirectoryParts();
        Assert.Null(parts.Channels.TryBorrow(FirstId, First)); // no tunnel hop keeps one: the caller opens its own
        var client = parts.Channels.Client(FirstId, First);

        parts.Time.Advance(PeerChannels.PooledIdleTimeout - TimeSpan.FromSeconds(1));
        var borrowed = parts.Channels.TryBorrow(FirstId, First);
        Assert.NotNull(borrowed);
        Assert.Same(client, borrowed.Client);

        // Idle past the timeout while lent: kept.
        parts.Time.Advance(TimeSpan.FromSeconds(2));
        parts.Channels.SweepIdle();
        Assert.Equal(1, parts.Channels.PooledCount);

        // Returned: idle since the tunnel hop's last use, not since the borrowing, so closed at once.
        borrowed.Dispose();
        borrowed.Dispose(); // returned once
        parts.Channels.SweepIdle();
        Assert.Equal(0, parts.Channels.PooledCount);
        Assert.Null(parts.Channels.TryBorrow(FirstId, First));
    }

    [Fact]
    public void Borrowing_sweeps_idle_channels_when_no_tunnel_asks_for_one()
    {
        using var parts = new DirectoryParts();
        parts.Channels.Client(FirstId, First);

        // A node that builds no more tunnels only gossips: its borrowing retires the idle channel.
        parts.Time.Advance(PeerChannels.PooledIdleTimeout + TimeSpan.FromSeconds(1));
        Assert.Null(parts.Channels.TryBorrow(FirstId, First));
        Assert.Equal(0, parts.Channels.PooledCount);
    }

    [Fact]
    public void Channels_are_pooled_by_node_id_and_endpoint_not_by_address_alone()
    {
        // Another node now answering at a known endpoint (a restart with a new identity, a moved
        // address) must not be handed the channel whose connections proved the first node.
        using var parts = new DirectoryParts();
        var first = parts.Channels.Client(FirstId, First);

        Assert.Same(first, parts.Channels.Client(FirstId, First));
        Assert.NotSame(first, parts.Channels.Client(SecondId, First));
        Assert.Equal(2, parts.Channels.PooledCount);
    }

    [Fact]
    public void A_failed_creation_is_not_cached()
    {
        using var parts = new DirectoryParts();
        var unusable = new Uri("ftp://198.51.100.3:21/");

        Assert.ThrowsAny<Exception>(() => parts.Channels.Client(FirstId, unusable));
        Assert.Equal(0, parts.Channels.PooledCount);
        Assert.ThrowsAny<Exception>(() => parts.Channels.Client(FirstId, unusable));
        Assert.Equal(0, parts.Channels.PooledCount);
    }
}
