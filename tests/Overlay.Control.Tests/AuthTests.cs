using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;
using V1 = Overlay.Protocol.Control.V1;

namespace Overlay.Control.Tests;

[Collection(SharedOverlayCollection.Name)]
public sealed class AuthTests(SharedOverlay shared)
{
    private TestOverlay Overlay => shared.Overlay;

    [Fact]
    public async Task Missing_token_is_unauthenticated_and_says_where_the_token_is()
    {
        using var client = Overlay.Client(0, noToken: true);
        var error = await Rpc.ThrowsAsync(StatusCode.Unauthenticated, async () => await client.Api.GetInfoAsync(new V1.GetInfoRequest()));
        Assert.Equal("missing_token", error.Reason());
        Assert.Contains(Overlay.Nodes[0].Control.TokenFile, error.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Wrong_token_is_unauthenticated_on_every_kind_of_call()
    {
        using var client = Overlay.Client(0, token: new string('0', 64));
        var unary = await Rpc.ThrowsAsync(StatusCode.Unauthenticated, async () => await client.Api.GetInfoAsync(new V1.GetInfoRequest()));
        Assert.Equal("bad_token", unary.Reason());

        using var events = client.Api.WatchEvents(new V1.WatchEventsRequest());
        await Rpc.ThrowsAsync(StatusCode.Unauthenticated, async () => await events.ResponseStream.MoveNext());

        using var tunnel = client.Api.OpenTunnel();
        await Rpc.ThrowsAsync(StatusCode.Unauthenticated, async () => await tunnel.ResponseStream.MoveNext());

        // Another node's token is a wrong token here.
        using var other = Overlay.Client(0, token: Overlay.OperatorToken(1));
        await Rpc.ThrowsAsync(StatusCode.Unauthenticated, async () => await other.Api.GetStatsAsync(new V1.GetStatsRequest()));
    }

    [Fact]
    public async Task Application_token_may_read_but_not_administer()
    {
        using var app = Overlay.Client(0, token: TestOverlay.ApplicationToken);
        var info = await app.Api.GetInfoAsync(new V1.GetInfoRequest());
        Assert.Equal("application", info.CallerRole);

        var rotate = await Rpc.ThrowsAsync(StatusCode.PermissionDenied, async () => await app.Api.RotateKeysAsync(new V1.RotateKeysRequest()));
        Assert.Equal("not_permitted", rotate.Reason());
        await Rpc.ThrowsAsync(StatusCode.PermissionDenied, async () => await app.Api.RemovePeerAsync(new V1.RemovePeerRequest { NodeId = Overlay.Nodes[1].Id.ToString(), Ban = true }));
        await Rpc.ThrowsAsync(StatusCode.PermissionDenied, async () => await app.Api.AddPeerAsync(new V1.AddPeerRequest { Endpoint = Overlay.Nodes[1].LinkEndpoint.ToString() }));
        Assert.Equal(4, (await app.Api.ListPeersAsync(new V1.ListPeersRequest())).Peers.Count);
    }

    [Fact]
    public async Task Health_and_reflection_need_no_token()
    {
        using var channel = GrpcChannel.ForAddress(Overlay.Nodes[0].Control.Url);
        var health = await new Health.HealthClient(channel).CheckAsync(new HealthCheckRequest());
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, health.Status);

        var reflection = new Grpc.Reflection.V1Alpha.ServerReflection.ServerReflectionClient(channel);
        using var call = reflection.ServerReflectionInfo();
        await call.RequestStream.WriteAsync(new Grpc.Reflection.V1Alpha.ServerReflectionRequest { ListServices = "" });
        await call.RequestStream.CompleteAsync();
        Assert.True(await call.ResponseStream.MoveNext());
        var services = call.ResponseStream.Current.ListServicesResponse.Service.Select(s => s.Name).ToList();
        Assert.Contains("overlay.v1.Control", services);
    }

    [Fact]
    public async Task Link_endpoint_does_not_serve_control_and_control_endpoint_does_not_serve_link()
    {
        // The link endpoint is TLS and admits only nodes: the caller presents a node certificate to get that far.
        using var onLink = new ControlClient(Overlay.Nodes[0].LinkEndpoint, Overlay.OperatorToken(0), TestLinkTls.Handler(Overlay.Nodes[0].LinkEndpoint));
        await Rpc.ThrowsAsync(StatusCode.Unimplemented, async () => await onLink.Api.GetInfoAsync(new V1.GetInfoRequest()));

        using var channel = GrpcChannel.ForAddress(Overlay.Nodes[0].Control.Url);
        var link = new Overlay.Protocol.V1.Link.LinkClient(channel);
        await Rpc.ThrowsAsync(StatusCode.Unimplemented, async () =>
            await link.ProveAsync(new Overlay.Protocol.V1.ProofRequest { Challenge = Google.Protobuf.ByteString.CopyFrom(new byte[32]) }));

        // Health is served on both.
        using var linkChannel = TestLinkTls.Channel(Overlay.Nodes[0].LinkEndpoint);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, (await new Health.HealthClient(linkChannel).CheckAsync(new HealthCheckRequest())).Status);
    }

    [Fact]
    public void Generated_token_file_is_owner_only()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        var mode = File.GetUnixFileMode(Overlay.Nodes[0].Control.TokenFile);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, mode);
        Assert.Equal(64, Overlay.OperatorToken(0).Length);
    }
}
