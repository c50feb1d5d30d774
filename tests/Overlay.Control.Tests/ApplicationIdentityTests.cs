using Google.Protobuf;
using Grpc.Core;
using V1 = Overlay.Protocol.Control.V1;

namespace Overlay.Control.Tests;

/// <summary>Named application tokens: each application its own caller, with its own tunnels, events and quota.</summary>
public sealed class ApplicationIdentityTests
{
    private const string AlphaToken = "alpha-application-token-0123456789";
    private const string BetaToken = "beta-application-token-0123456789";

    private static async Task<(TestOverlay Overlay, DirectoryInfo Secrets)> StartAsync()
    {
        var secrets = Directory.CreateTempSubdirectory("overlay-application-tokens-");
        var alpha = Path.Combine(secrets.FullName, "alpha.token");
        var beta = Path.Combine(secrets.FullName, "beta.token");
        await File.WriteAllTextAsync(alpha, AlphaToken);
        await File.WriteAllTextAsync(beta, BetaToken);
        var overlay = await TestOverlay.StartAsync(3, (_, c) =>
        {
            c["Overlay:Control:Applications:alpha:TokenFile"] = alpha;
            c["Overlay:Control:Applications:beta:TokenFile"] = beta;
            c["Overlay:Control:MaxTunnelsPerClient"] = "1";
            c["Overlay:Control:MaxListenersPerClient"] = "1";
        });
        return (overlay, secrets);
    }

    [Fact]
    public async Task Each_application_sees_closes_and_hears_of_only_its_own_tunnels_and_has_its_own_quota()
    {
        var (overlay, secrets) = await StartAsync();
        await using var _ = overlay;
        using var cleanup = new DirectoryCleanup(secrets);
        using var deadline = TestTimeouts.After(30);
        var c = overlay.Nodes[2].Id.ToString();
        using var alpha = overlay.Client(0, token: AlphaToken);
        using var beta = overlay.Client(0, token: BetaToken);
        Assert.Equal("alpha", (await alpha.Api.GetInfoAsync(new V1.GetInfoRequest())).Caller);

        using var alphaEvents = alpha.Api.WatchEvents(new V1.WatchEventsRequest { EventTypes = { V1.EventType.TunnelOpened } }, cancellationToken: deadline.Token);
        using var betaEvents = beta.Api.WatchEvents(new V1.WatchEventsRequest { EventTypes = { V1.EventType.TunnelOpened } }, cancellationToken: deadline.Token);
        await alphaEvents.ResponseHeadersAsync;
        await betaEvents.ResponseHeadersAsync;

        // Alpha holds a tunnel open: its one slot.
        using var held = alpha.Api.OpenTunnel(cancellationToken: deadline.Token);
        await held.RequestStream.WriteAsync(new V1.OpenTunnelRequest { Open = new V1.TunnelTarget { Destination = c, Relays = 1 }, Data = ByteString.CopyFromUtf8("hold") });
        Assert.True(await held.ResponseStream.MoveNext(deadline.Token));
        var alphaTunnel = held.ResponseStream.Current.Opened.TunnelId;

        Assert.Single((await alpha.Api.ListTunnelsAsync(new V1.ListTunnelsRequest())).Tunnels, t => t.TunnelId == alphaTunnel && t.Client == "alpha");
        Assert.Empty((await beta.Api.ListTunnelsAsync(new V1.ListTunnelsRequest())).Tunnels);
        var close = await Rpc.ThrowsAsync(StatusCode.PermissionDenied, async () => await beta.Api.CloseTunnelAsync(new V1.CloseTunnelRequest { TunnelId = alphaTunnel }));
        Assert.Equal("not_permitted", close.Reason());

        // A ping takes a slot of the caller's quota: alpha has none left, beta has its own.
        var ping = await Rpc.ThrowsAsync(StatusCode.ResourceExhausted, async () => await TunnelTests.PingOnceAsync(alpha, c, 1, deadline.Token));
        Assert.Equal("too_many_tunnels", ping.Reason());
        Assert.True((await TunnelTests.PingOnceAsync(beta, c, 1, deadline.Token)).Ok);

        // Alpha hears of its tunnel; beta's first event is its own, published after alpha's.
        Assert.True(await alphaEvents.ResponseStream.MoveNext(deadline.Token));
        Assert.Equal(alphaTunnel, alphaEvents.ResponseStream.Current.Tunnel.TunnelId);
        Assert.Equal("alpha", alphaEvents.ResponseStream.Current.Tunnel.Client);
        var betaReply = await TunnelTests.SendAndReadAsync(beta, c, "beta"u8.ToArray(), deadline.Token);
        Assert.Equal("beta"u8.ToArray(), betaReply);
        Assert.True(await betaEvents.ResponseStream.MoveNext(deadline.Token));
        Assert.Equal("beta", betaEvents.ResponseStream.Current.Tunnel.Client);

        // Listening: one registration each here, so alpha cannot take every listener slot from beta.
        using var alphaListen = alpha.Api.Listen(new V1.ListenRequest(), cancellationToken: deadline.Token);
        await alphaListen.ResponseHeadersAsync;
        using var alphaAgain = alpha.Api.Listen(new V1.ListenRequest(), cancellationToken: deadline.Token);
        var full = await Rpc.ThrowsAsync(StatusCode.ResourceExhausted, async () => await alphaAgain.ResponseStream.MoveNext(deadline.Token));
        Assert.Equal("too_many_listeners", full.Reason());
        Assert.Contains("MaxListenersPerClient", full.Status.Detail, StringComparison.Ordinal);
        using var betaListen = beta.Api.Listen(new V1.ListenRequest(), cancellationToken: deadline.Token);
        Assert.Equal("1", (await betaListen.ResponseHeadersAsync).GetValue("overlay-listening"));

        // The operator sees both.
        using var operatorClient = overlay.Client(0);
        Assert.Contains((await operatorClient.Api.ListTunnelsAsync(new V1.ListTunnelsRequest())).Tunnels, t => t.TunnelId == alphaTunnel);
    }

    [Fact]
    public async Task Two_applications_with_one_token_are_refused_at_start()
    {
        var secrets = Directory.CreateTempSubdirectory("overlay-application-tokens-");
        using var cleanup = new DirectoryCleanup(secrets);
        var one = Path.Combine(secrets.FullName, "one.token");
        await File.WriteAllTextAsync(one, AlphaToken);
        var failure = await Assert.ThrowsAnyAsync<Exception>(() => TestOverlay.StartAsync(1, (_, c) =>
        {
            c["Overlay:Control:Applications:alpha:TokenFile"] = one;
            c["Overlay:Control:Applications:beta:TokenFile"] = one;
        }));
        Assert.Contains("Overlay:Control:Applications", failure.ToString(), StringComparison.Ordinal);
    }

    private sealed class DirectoryCleanup(DirectoryInfo directory) : IDisposable
    {
        public void Dispose() => directory.Delete(recursive: true);
    }
}
