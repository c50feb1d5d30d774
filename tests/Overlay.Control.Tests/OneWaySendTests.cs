using System.Text;
using Grpc.Core;
using Overlay.Cli;

namespace Overlay.Control.Tests;

/// <summary>
/// A one-way send is reported delivered only on the destination's receipt: through a relay that
/// reads the message, forwards nothing and ends its call normally, `Send` fails with the typed
/// `unconfirmed` reason and `overlay send --one-way` exits non-zero.
/// </summary>
public sealed class OneWaySendTests
{
    [Fact]
    public async Task A_swallowed_one_way_send_is_unconfirmed_and_the_cli_says_so()
    {
        // Three nodes: the origin (0), the only possible relay (1, which swallows), the destination (2).
        await using var overlay = await TestOverlay.StartAsync(3);
        overlay.Cluster.Misbehaviours.Set(overlay.Cluster[1], RelayMisbehaviour.SwallowAndEnd);
        var arguments = new[]
        {
            "--node", overlay.Nodes[0].Control.Url.ToString(), "--token-file", overlay.Nodes[0].Control.TokenFile,
            "send", "--to", overlay.Nodes[2].Id.ToString(), "--relays", "1", "--one-way",
        };
        using var error = new StringWriter();
        var io = new CliIO { Input = new MemoryStream("ballot"u8.ToArray()), Output = new MemoryStream(), Error = error };
        using var deadline = TestTimeouts.After(30);

        var code = await OverlayCli.RunAsync(arguments, io, deadline.Token);

        Assert.Equal(ExitCodes.Unavailable, code);
        Assert.Contains("unconfirmed", error.ToString(), StringComparison.Ordinal);

        using var client = overlay.Client(0);
        using var send = client.Api.Send(cancellationToken: deadline.Token);
        await send.RequestStream.WriteAsync(new Protocol.Control.V1.SendRequest
        {
            Target = new Protocol.Control.V1.TunnelTarget { Destination = overlay.Nodes[2].Id.ToString(), Relays = 1 },
            Data = Google.Protobuf.ByteString.CopyFrom(Encoding.UTF8.GetBytes("ballot")),
        }, deadline.Token);
        await send.RequestStream.CompleteAsync();
        var failure = await Assert.ThrowsAsync<RpcException>(() => send.ResponseAsync);
        Assert.Equal(StatusCode.Unavailable, failure.StatusCode);
        Assert.Equal("unconfirmed", failure.Trailers.GetValue("overlay-reason"));
    }
}
