using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Overlay.Host.Tests.Infrastructure;
using Overlay.Host.Tunnels;
using Overlay.Protocol.V1;

namespace Overlay.Host.Tests;

/// <summary>
/// A tunnel whose first message carries request bytes is retried on a fresh route only when the
/// first hop was never reached: otherwise hop 1 may already have the request, and a retry could
/// deliver it twice. These check the test that decides it against real failures of a link call.
/// </summary>
public sealed class RetryTests
{
    [Fact]
    public async Task A_first_hop_that_never_accepted_the_connection_is_recognised()
    {
        using var deadline = TestTimeouts.After(30);
        var closedPort = Ports.Unused();

        using var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{closedPort}", new GrpcChannelOptions { HttpHandler = new SocketsHttpHandler { UseProxy = false } });
        using var call = new Protocol.V1.Link.LinkClient(channel).Relay(cancellationToken: deadline.Token);
        var failure = await Assert.ThrowsAsync<RpcException>(() => call.RequestStream.WriteAsync(new LinkMessage { Cells = ByteString.CopyFrom(new byte[64]) }, deadline.Token));

        Assert.True(TunnelClient.NeverConnected(failure), $"not recognised: {failure}");
    }

    [Fact]
    public async Task A_first_hop_that_received_the_message_and_refused_it_is_not_taken_for_unreachable()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        using var deadline = TestTimeouts.After(30);
        using var channel = GrpcChannel.ForAddress(cluster[1].LinkEndpoint, new GrpcChannelOptions { HttpHandler = new SocketsHttpHandler { UseProxy = false } });
        using var call = new Protocol.V1.Link.LinkClient(channel).Relay(cancellationToken: deadline.Token);

        // A header of the wrong size: the hop reads it and ends the call with a refusal.
        await call.RequestStream.WriteAsync(new LinkMessage { Header = ByteString.CopyFrom(new byte[10]) }, deadline.Token);
        var refusal = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext(deadline.Token));

        Assert.False(TunnelClient.NeverConnected(refusal), $"taken for unreachable: {refusal}");
        Assert.False(TunnelClient.NeverConnected(new IOException("the connection was reset")));
    }
}
