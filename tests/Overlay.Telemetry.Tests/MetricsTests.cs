using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Security.Cryptography;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Overlay.Errors;
using Overlay.Host;
using Overlay.Host.Tunnels;
using Overlay.Onion;
using Overlay.Protocol.V1;

namespace Overlay.Telemetry.Tests;

public sealed class MetricsTests
{
    [Fact]
    public async Task Counters_move_for_a_success_a_failure_and_a_replay()
    {
        await using var cluster = await TracedCluster.StartAsync(5);
        using var recorder = new MeasurementRecorder();
        var origin = cluster.Nodes[0];
        var relays = new[] { cluster.Nodes[1], cluster.Nodes[2] };
        var destination = cluster.Nodes[3];

        // A success through two relays.
        await origin.Tunnels.RoundTripAsync(new TunnelRequest { Route = [relays[0].Id, relays[1].Id, destination.Id] }, RandomNumberGenerator.GetBytes(64));
        Assert.Equal(1, recorder.Sum(origin, "overlay.tunnels.opened", ("overlay.tunnel.role", "origin")));
        Assert.All(relays, r => Assert.Equal(1, recorder.Sum(r, "overlay.tunnels.opened", ("overlay.tunnel.role", "relay"))));
        Assert.Equal(1, recorder.Sum(destination, "overlay.tunnels.opened", ("overlay.tunnel.role", "destination")));
        Assert.True(recorder.Sum(relays[0], "overlay.relay.cells", ("overlay.cell.direction", "forward")) >= 1);
        Assert.True(recorder.Sum(relays[0], "overlay.relay.cells", ("overlay.cell.direction", "backward")) >= 1);
        Assert.Equal(0, recorder.Sum(origin, "overlay.tunnels.failed"));

        // A failure: the second relay is gone.
        var dead = cluster.Nodes[4];
        await dead.KillAsync();
        await Assert.ThrowsAsync<TunnelException>(() =>
            origin.Tunnels.RoundTripAsync(new TunnelRequest { Route = [relays[0].Id, dead.Id, destination.Id] }, RandomNumberGenerator.GetBytes(64)));
        Assert.Equal(1, recorder.Sum(origin, "overlay.tunnels.failed", ("error.type", "next_hop_unreachable")));
        Assert.True(1 == recorder.Sum(relays[0], "overlay.tunnels.failed", ("error.type", "next_hop_unreachable")), recorder.Dump(relays[0]));

        // A replay: the same header twice at the destination.
        var header = new byte[OnionHeader.SizeFor(destination.State.Network)];
        using (var keys = new OnionHeaderBuilder(destination.State.Network).Build([destination.State.Descriptor!.ToRouteHop()], TunnelMode.OneWay, DeadlineClass.Seconds5, header))
        {
            using var channel = TestLinkTls.Channel(destination.LinkEndpoint);
            var client = new Link.LinkClient(channel);
            await SendHeaderAsync(client, header);
            var replay = await Assert.ThrowsAsync<RpcException>(() => SendHeaderAsync(client, header));
            Assert.Equal("2", replay.Trailers.GetValue("overlay-error"));
        }

        Assert.Equal(1, recorder.Sum(destination, "overlay.headers.rejected", ("error.type", "replayed")));
    }

    private static async Task SendHeaderAsync(Link.LinkClient client, byte[] header)
    {
        using var call = client.Relay();
        await call.RequestStream.WriteAsync(new LinkMessage { Header = ByteString.CopyFrom(header) });
        await call.RequestStream.CompleteAsync();
        while (await call.ResponseStream.MoveNext(CancellationToken.None))
        {
        }
    }

    /// <summary>Every measurement of the Overlay meters in this process, by node.</summary>
    private sealed class MeasurementRecorder : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly ConcurrentQueue<(string Node, string Instrument, long Value, KeyValuePair<string, object?>[] Tags)> _measurements = new();

        public MeasurementRecorder()
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == "Overlay")
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
            {
                var node = instrument.Meter.Tags?.FirstOrDefault(t => t.Key == "service.instance.id").Value as string ?? "";
                _measurements.Enqueue((node, instrument.Name, value, tags.ToArray()));
            });
            _listener.Start();
        }

        public long Sum(OverlayNode node, string instrument, params (string Key, string Value)[] tags) => _measurements
            .Where(m => m.Node == node.Id.ToString() && m.Instrument == instrument)
            .Where(m => tags.All(t => m.Tags.Any(x => x.Key == t.Key && Equals(x.Value, t.Value))))
            .Sum(m => m.Value);

        public string Dump(OverlayNode node) => string.Join("; ", _measurements
            .Where(m => m.Node == node.Id.ToString())
            .Select(m => $"{m.Instrument}={m.Value} [{string.Join(",", m.Tags.Select(t => $"{t.Key}={t.Value}"))}]"));

        public void Dispose() => _listener.Dispose();
    }
}
