using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Overlay.Host.Directory;
using Overlay.Host.Tunnels;

namespace Overlay.Host.Tests.Directory;

/// <summary>
/// A directory exchange rides on the link connection tunnel hops already hold to that peer, so
/// gossip between nodes that carry each other's tunnels costs no new connection and no TLS
/// handshake; between the others it still opens one and closes it after.
/// </summary>
public sealed class GossipConnectionTests
{
    [Fact]
    public async Task An_exchange_with_a_peer_a_tunnel_hop_is_connected_to_opens_no_connection()
    {
        await using var cluster = await TestCluster.StartAsync(3, new ClusterOptions { PauseGossipOnceFormed = true });
        using var deadline = TestTimeouts.After(60);
        var origin = cluster[0];
        using var accepted = new AcceptedConnections(cluster[1].LinkEndpoint.Port, cluster[2].LinkEndpoint.Port);

        // A tunnel to node 1 keeps a link connection from node 0 open; node 2 carries nothing from node 0.
        await using var tunnel = await origin.Tunnels.OpenAsync(new TunnelRequest { Route = [cluster[1].Id] }, deadline.Token);
        var toOneBefore = accepted.At(cluster[1].LinkEndpoint.Port);
        var toTwoBefore = accepted.At(cluster[2].LinkEndpoint.Port);

        // Node 1 marked suspect: only an exchange with it that succeeds brings it back up, so the rounds below must reach it.
        origin.Directory.ReportFailure(cluster[1].Id);
        Assert.Equal(PeerStatus.Suspect, origin.Directory.Find(cluster[1].Id)?.Status);
        var directory = origin.Services.GetRequiredService<DirectoryService>();
        for (var round = 0; round < 5; round++)
        {
            await directory.RunGossipRoundAsync(deadline.Token);
        }

        // Every round exchanged with both (fan-out 3, two peers): node 1 up again, over the tunnel's connection.
        Assert.Equal(toOneBefore, accepted.At(cluster[1].LinkEndpoint.Port));
        Assert.True(accepted.At(cluster[2].LinkEndpoint.Port) >= toTwoBefore + 5, $"node 2 accepted {accepted.At(cluster[2].LinkEndpoint.Port) - toTwoBefore} connections in 5 rounds");
        Assert.Equal(PeerStatus.Up, origin.Directory.Find(cluster[1].Id)?.Status);
        Assert.Equal(PeerStatus.Up, origin.Directory.Find(cluster[2].Id)?.Status);
    }

    /// <summary>Connections the nodes' Kestrel listeners accepted, per port (Kestrel's own <c>kestrel.active_connections</c>).</summary>
    private sealed class AcceptedConnections : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly Dictionary<int, int> _accepted = [];

        public AcceptedConnections(params int[] ports)
        {
            foreach (var port in ports)
            {
                _accepted[port] = 0;
            }

            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == "Microsoft.AspNetCore.Server.Kestrel" && instrument.Name == "kestrel.active_connections")
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
            {
                if (value <= 0)
                {
                    return;
                }

                foreach (var tag in tags)
                {
                    if (tag.Key == "server.port" && Convert.ToInt32(tag.Value, System.Globalization.CultureInfo.InvariantCulture) is var port)
                    {
                        lock (_accepted)
                        {
                            if (_accepted.TryGetValue(port, out var count))
                            {
                                _accepted[port] = count + 1;
                            }
                        }
                    }
                }
            });
            _listener.Start();
        }

        public int At(int port)
        {
            lock (_accepted)
            {
                return _accepted[port];
            }
        }

        public void Dispose() => _listener.Dispose();
    }
}
