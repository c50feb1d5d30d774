using Overlay.Errors;
using Overlay.Host.Tests.Infrastructure;
using Overlay.Host.Tunnels;
using Overlay.Onion;

namespace Overlay.Host.Tests;

/// <summary>
/// The idle rule (docs/protocol.md §7.5): every hop ends a tunnel after no cell either way for the
/// network's idle timeout, and each open end keeps a quiet tunnel alive with padding. The network
/// here uses a 3 s idle timeout, so "quiet for longer than the timeout" is measured in padding
/// cells sent (each one follows at least half a second of silence), not in sleeps.
/// </summary>
public sealed class IdleTunnelTests(ITestOutputHelper output)
{
    private static readonly ClusterOptions ShortIdle = new()
    {
        Configuration = new Dictionary<string, string?> { ["Overlay:Network:IdleTimeout"] = "00:00:03" },
    };

    // Seven padding cells, each after at least 0.5 s without a write: more than the 3 s timeout of silence.
    private const int PaddingBeyondTheTimeout = 7;

    [Fact]
    public async Task An_abandoned_tunnel_is_ended_by_the_idle_timeout_with_a_typed_reason()
    {
        await using var cluster = await TestCluster.StartAsync(3, ShortIdle);
        using var deadline = TestTimeouts.After(30);
        using var keys = RawOrigin.Build(cluster[0].Descriptor.Network, [cluster[1].Descriptor, cluster[2].Descriptor]);

        var failure = await RawOrigin.HeaderOnlyAsync(cluster[1].LinkEndpoint, keys, deadline.Token);

        output.WriteLine(failure.Message);
        Assert.Equal(TunnelErrorKind.IdleTimeout, failure.Kind);
        Assert.InRange(failure.Hop, 1, 2);
        await cluster.WaitForNoActiveTunnelsAsync(deadline.Token);
    }

    [Fact]
    public async Task A_quiet_tunnel_whose_request_is_open_is_kept_alive_by_the_origins_padding()
    {
        await using var cluster = await TestCluster.StartAsync(4, ShortIdle with { NodeDefaultHandler = true });
        using var deadline = TestTimeouts.After(60);
        await using var tunnel = await cluster[0].Tunnels.OpenAsync(
            new TunnelRequest { Route = [cluster[1].Id, cluster[2].Id, cluster[3].Id] }, deadline.Token);
        var reply = new byte[64];
        await tunnel.WriteAsync("first"u8.ToArray(), cancellationToken: deadline.Token);
        Assert.Equal(5, await ReadAtLeastAsync(tunnel, reply, 5, deadline.Token));

        await tunnel.WaitForPaddingSentAsync(PaddingBeyondTheTimeout, deadline.Token);

        await tunnel.WriteAsync("second"u8.ToArray(), final: true, deadline.Token);
        Assert.Equal(6, await ReadAtLeastAsync(tunnel, reply, 6, deadline.Token));
        Assert.Equal(0, await tunnel.ReadAsync(reply, deadline.Token));
        output.WriteLine($"{tunnel.PaddingSent} padding cells kept the tunnel open");
    }

    [Fact]
    public async Task A_destination_pads_while_its_handler_takes_longer_than_the_timeout_after_the_request_ended()
    {
        await using var cluster = await TestCluster.StartAsync(3, ShortIdle);
        using var deadline = TestTimeouts.After(60);
        var stall = cluster.Handler.RegisterStall();
        await using var tunnel = await cluster[0].Tunnels.OpenAsync(new TunnelRequest { Route = [cluster[1].Id, cluster[2].Id] }, deadline.Token);
        await tunnel.WriteAsync(stall.Tag, final: true, deadline.Token);
        await stall.Reached.WaitAsync(deadline.Token);
        var reading = ReadToEndAsync(tunnel, deadline.Token);

        var padded = tunnel.WaitForPaddingReceivedAsync(PaddingBeyondTheTimeout, deadline.Token);
        Assert.Same(padded, await Task.WhenAny(padded, reading));
        await padded;

        stall.Release();
        Assert.Equal(stall.Tag, await reading);
        output.WriteLine($"{tunnel.PaddingReceived} padding cells from the destination");
    }

    private static async Task<int> ReadAtLeastAsync(OverlayTunnel tunnel, byte[] buffer, int count, CancellationToken cancellationToken)
    {
        var total = 0;
        while (total < count)
        {
            var read = await tunnel.ReadAsync(buffer.AsMemory(total), cancellationToken);
            Assert.NotEqual(0, read);
            total += read;
        }

        return total;
    }

    private static async Task<byte[]> ReadToEndAsync(OverlayTunnel tunnel, CancellationToken cancellationToken)
    {
        using var all = new MemoryStream();
        var buffer = new byte[4096];
        int read;
        while ((read = await tunnel.ReadAsync(buffer, cancellationToken)) > 0)
        {
            all.Write(buffer, 0, read);
        }

        return all.ToArray();
    }
}
