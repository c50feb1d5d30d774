using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Overlay.Client;
using V1 = Overlay.Protocol.Control.V1;

namespace Overlay.Control.Tests;

/// <summary>Named services: a tunnel names one inside the onion, its owner listens for it, nobody else can.</summary>
public sealed class NamedServiceTests
{
    private const string WebToken = "web-application-token-0123456789";
    private const string OtherToken = "other-application-token-0123456789";

    [Fact]
    public async Task A_service_reaches_only_its_owner_and_unknown_or_unattended_services_are_refused()
    {
        var secrets = Directory.CreateTempSubdirectory("overlay-service-tokens-");
        try
        {
            var web = Path.Combine(secrets.FullName, "web.token");
            var other = Path.Combine(secrets.FullName, "other.token");
            await File.WriteAllTextAsync(web, WebToken);
            await File.WriteAllTextAsync(other, OtherToken);
            await using var overlay = await TestOverlay.StartAsync(3, (_, c) =>
            {
                c["Overlay:Control:Applications:web-app:TokenFile"] = web;
                c["Overlay:Control:Applications:other:TokenFile"] = other;
                c["Overlay:Control:Services:web:Owner"] = "web-app";
                c["Overlay:Control:AcceptTimeout"] = "00:00:05";
            });
            using var deadline = TestTimeouts.After(30);
            var b = overlay.Nodes[1];
            ServiceProvider Services(int node, string token) =>
                ClientTests.Services(overlay.Nodes[node].Control.Url, o => o.Token = token);

            using var origin = Services(0, overlay.OperatorToken(0));
            var client = origin.GetRequiredService<OverlayClient>();
            var webTarget = new OverlayTarget { Destination = b.Id.ToString(), Relays = 1, Service = "web" };

            // Nobody listens for it yet: refused at the destination, not echoed.
            var unattended = await Assert.ThrowsAsync<OverlayTunnelException>(() => RoundTripAsync(client, webTarget, "early", deadline.Token));
            Assert.Equal("destination_refused", unattended.Reason);
            Assert.Equal(2, unattended.Hop);

            // Another application may not listen for it; nobody may listen for a service the operator did not configure.
            using var otherApp = Services(1, OtherToken);
            var taken = await Assert.ThrowsAsync<OverlayAuthenticationException>(() => otherApp.GetRequiredService<OverlayClient>().ListenAsync("web", deadline.Token));
            Assert.Equal("not_permitted", taken.Reason);
            var unknown = await Assert.ThrowsAsync<OverlayNotFoundException>(() => otherApp.GetRequiredService<OverlayClient>().ListenAsync("mail", deadline.Token));
            Assert.Equal("unknown_service", unknown.Reason);

            // The owner listens for it, and a default listener beside it gets none of its tunnels.
            using var owner = Services(1, WebToken);
            using var webListener = await owner.GetRequiredService<OverlayClient>().ListenAsync("web", deadline.Token);
            using var defaultListener = await otherApp.GetRequiredService<OverlayClient>().ListenAsync(cancellationToken: deadline.Token);
            var serving = Task.Run(async () =>
            {
                await foreach (var tunnel in webListener.WithCancellation(deadline.Token))
                {
                    await using (tunnel)
                    {
                        Assert.Equal("web", tunnel.Service);
                        using var request = new MemoryStream();
                        await tunnel.CopyToAsync(request, deadline.Token);
                        await tunnel.WriteAsync((byte[])[.. "web: "u8, .. request.ToArray()], deadline.Token);
                        await tunnel.CompleteWritingAsync(deadline.Token);
                        return;
                    }
                }
            });
            Assert.Equal("web: hello", await RoundTripAsync(client, webTarget, "hello", deadline.Token));
            await serving;

            var mail = await Assert.ThrowsAsync<OverlayTunnelException>(() => RoundTripAsync(client, webTarget with { Service = "mail" }, "x", deadline.Token));
            Assert.Equal("destination_refused", mail.Reason);
            var tooLong = await Assert.ThrowsAsync<OverlayInvalidRequestException>(() => RoundTripAsync(client, webTarget with { Service = new string('s', 33) }, "x", deadline.Token));
            Assert.Contains("service", tooLong.Message, StringComparison.Ordinal);
        }
        finally
        {
            secrets.Delete(recursive: true);
        }
    }

    private static async Task<string> RoundTripAsync(OverlayClient client, OverlayTarget target, string request, CancellationToken token)
    {
        await using var tunnel = await client.OpenTunnelAsync(target, token);
        await tunnel.WriteAsync(System.Text.Encoding.UTF8.GetBytes(request), token);
        await tunnel.CompleteWritingAsync(token);
        using var reply = new MemoryStream();
        await tunnel.CopyToAsync(reply, token);
        return System.Text.Encoding.UTF8.GetString(reply.ToArray());
    }
}
