using Overlay.Errors;
using Overlay.Host.Directory;
using Overlay.Host.Tests.Infrastructure;
using Overlay.Host.Tunnels;
using Overlay.Identity;
using Overlay.Onion;

namespace Overlay.Host.Tests;

/// <summary>
/// What a relay that follows the protocol only when it suits it cannot do (docs/protocol.md §7.4,
/// §7.6): make a one-way message vanish while the origin reports it delivered, or push an honest
/// successor out of the origin's routes on its own word.
/// </summary>
public sealed class RelayIntegrityTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_one_way_message_is_delivered_only_when_the_destinations_receipt_says_so()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        using var deadline = TestTimeouts.After(30);
        var message = new byte[100_000];
        Random.Shared.NextBytes(message);

        await using var tunnel = await cluster[0].Tunnels.OpenAsync(
            new TunnelRequest { Route = [cluster[1].Id, cluster[2].Id], Mode = TunnelMode.OneWay }, deadline.Token);
        await tunnel.WriteAsync(message, final: true, deadline.Token);

        Assert.Equal(0, await tunnel.ReadAsync(new byte[16], deadline.Token));
        Assert.Equal(message.Length, tunnel.BytesSent);
    }

    [Fact]
    public async Task A_relay_that_swallows_a_one_way_message_and_ends_normally_leaves_it_unconfirmed()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        using var deadline = TestTimeouts.After(30);
        cluster.Misbehaviours.Set(cluster[1], RelayMisbehaviour.SwallowAndEnd);

        await using var tunnel = await cluster[0].Tunnels.OpenAsync(
            new TunnelRequest { Route = [cluster[1].Id, cluster[2].Id], Mode = TunnelMode.OneWay }, deadline.Token);
        await tunnel.WriteAsync(new byte[5000], final: true, deadline.Token);

        var failure = await Assert.ThrowsAsync<TunnelException>(async () => await tunnel.ReadAsync(new byte[16], deadline.Token));
        output.WriteLine(failure.Message);
        Assert.Equal(TunnelErrorKind.Unconfirmed, failure.Kind);
        Assert.Equal(0, failure.Hop);
    }

    [Fact]
    public async Task A_failure_a_relay_blames_on_its_successor_counts_against_the_relay_not_the_successor()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        using var deadline = TestTimeouts.After(30);
        var origin = cluster[0];
        var reporter = cluster[1];
        var blamed = cluster[2];
        // The successor refuses every hop as an unreachable node would; the relay reports "my next hop".
        cluster.Misbehaviours.Set(blamed, RelayMisbehaviour.Refuse);
        var changes = new List<PeerStatusChange>();
        origin.Directory.StatusChanged += change =>
        {
            lock (changes)
            {
                changes.Add(change);
            }
        };

        var failure = await Assert.ThrowsAsync<TunnelException>(() =>
            origin.Tunnels.RoundTripAsync(new TunnelRequest { Route = [reporter.Id, blamed.Id] }, new byte[64], cancellationToken: deadline.Token));

        output.WriteLine(failure.Message);
        Assert.Equal(TunnelErrorKind.NextHopUnreachable, failure.Kind);
        Assert.Equal(2, failure.Hop);
        Assert.Equal(1, failure.ReportedBy);
        lock (changes)
        {
            Assert.Contains(changes, c => c.Id == reporter.Id && c.Status is PeerStatus.Suspect or PeerStatus.Down);
            Assert.DoesNotContain(changes, c => c.Id == blamed.Id && c.Status is PeerStatus.Suspect or PeerStatus.Down);
        }
    }

    [Fact]
    public async Task A_service_the_destination_does_not_host_is_refused_typed()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        using var deadline = TestTimeouts.After(30);

        var failure = await Assert.ThrowsAsync<TunnelException>(() =>
            cluster[0].Tunnels.RoundTripAsync(new TunnelRequest { Route = [cluster[1].Id, cluster[2].Id], Service = "web" }, new byte[64], cancellationToken: deadline.Token));

        Assert.Equal(TunnelErrorKind.DestinationRefused, failure.Kind);
        Assert.Equal(2, failure.Hop);
    }

    [Fact]
    public async Task A_second_concurrent_write_is_refused_rather_than_sealed_under_the_same_sequence_numbers()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        using var deadline = TestTimeouts.After(30);
        var stall = cluster.Handler.RegisterStall();
        await using var tunnel = await cluster[0].Tunnels.OpenAsync(new TunnelRequest { Route = [cluster[1].Id, cluster[2].Id] }, deadline.Token);
        await tunnel.WriteAsync(stall.Tag, cancellationToken: deadline.Token);
        await stall.Reached.WaitAsync(deadline.Token);

        // The destination reads nothing more: this write fills the route's windows and waits.
        var first = tunnel.WriteAsync(new byte[8 << 20], cancellationToken: deadline.Token).AsTask();
        Assert.False(first.IsCompleted);
        var second = await Assert.ThrowsAsync<InvalidOperationException>(async () => await tunnel.WriteAsync(new byte[10], cancellationToken: deadline.Token));

        Assert.Contains("one write at a time", second.Message, StringComparison.Ordinal);
        stall.Release();
        var draining = Task.Run(async () =>
        {
            var buffer = new byte[64 * 1024];
            long total = 0;
            int read;
            while ((read = await tunnel.ReadAsync(buffer, deadline.Token)) > 0)
            {
                total += read;
            }

            return total;
        });
        await first.WaitAsync(deadline.Token);
        await tunnel.CompleteAsync(deadline.Token);
        Assert.Equal(ControlledTunnelHandler.TagSize + (8 << 20), await draining.WaitAsync(deadline.Token));
    }
}
