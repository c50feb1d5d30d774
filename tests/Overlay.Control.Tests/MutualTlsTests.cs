using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using Overlay.Host;
using V1 = Overlay.Protocol.Control.V1;

namespace Overlay.Control.Tests;

[Collection(SharedOverlayCollection.Name)]
public sealed class MutualTlsTests
{
    private static X509Certificate2 Create(string name, bool server)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        if (server)
        {
            var san = new SubjectAlternativeNameBuilder();
            san.AddIpAddress(IPAddress.Loopback);
            request.CertificateExtensions.Add(san.Build());
        }

        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(server ? "1.3.6.1.5.5.7.3.1" : "1.3.6.1.5.5.7.3.2")], false));
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddHours(1));
    }

    private static V1.Control.ControlClient Client(Uri url, string token, X509Certificate2? clientCertificate, X509Certificate2 serverCertificate, out GrpcChannel channel)
    {
        var handler = new SocketsHttpHandler();
        handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, _) => certificate?.GetCertHashString() == serverCertificate.GetCertHashString();
        if (clientCertificate is not null)
        {
            handler.SslOptions.ClientCertificates = [clientCertificate];
        }

        channel = GrpcChannel.ForAddress(url, new GrpcChannelOptions { HttpHandler = handler });
        return new V1.Control.ControlClient(channel.Intercept(h =>
        {
            h.Add("authorization", $"Bearer {token}");
            return h;
        }));
    }

    [Fact]
    public async Task Allowed_client_certificate_and_token_pass_another_certificate_is_permission_denied()
    {
        var directory = Directory.CreateTempSubdirectory("overlay-mtls-");
        try
        {
            using var server = Create("overlay node", server: true);
            using var allowed = Create("allowed operator", server: false);
            using var other = Create("someone else", server: false);
            var certificateFile = Path.Combine(directory.FullName, "control.pem");
            var keyFile = Path.Combine(directory.FullName, "control.key");
            await File.WriteAllTextAsync(certificateFile, server.ExportCertificatePem());
            await File.WriteAllTextAsync(keyFile, server.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());

            await using var node = OverlayNode.Create(new OverlayNodeSettings
            {
                Configuration = new Dictionary<string, string?>
                {
                    ["Overlay:DataDirectory"] = Path.Combine(directory.FullName, "data"),
                    ["Overlay:Link:Url"] = "http://127.0.0.1:0",
                    ["Overlay:Control:Url"] = "https://127.0.0.1:0",
                    ["Overlay:Control:CertificateFile"] = certificateFile,
                    ["Overlay:Control:CertificateKeyFile"] = keyFile,
                    ["Overlay:Control:RequireClientCertificate"] = "true",
                    ["Overlay:Control:AllowedClientCertificates:0"] = allowed.GetCertHashString(HashAlgorithmName.SHA256),
                    ["Logging:LogLevel:Default"] = "Warning",
                },
            });
            await node.StartAsync();
            Assert.Equal("https", node.Control.Url.Scheme);
            var token = (await File.ReadAllTextAsync(node.Control.TokenFile)).Trim();

            var ok = Client(node.Control.Url, token, allowed, server, out var okChannel);
            using (okChannel)
            {
                Assert.Equal(node.Id.ToString(), (await ok.GetInfoAsync(new V1.GetInfoRequest())).NodeId);
                var badToken = Client(node.Control.Url, "wrong-token-0123456789", allowed, server, out var badChannel);
                using (badChannel)
                {
                    await Rpc.ThrowsAsync(StatusCode.Unauthenticated, async () => await badToken.GetInfoAsync(new V1.GetInfoRequest()));
                }
            }

            var denied = Client(node.Control.Url, token, other, server, out var deniedChannel);
            using (deniedChannel)
            {
                var error = await Rpc.ThrowsAsync(StatusCode.PermissionDenied, async () => await denied.GetInfoAsync(new V1.GetInfoRequest()));
                Assert.Contains("AllowedClientCertificates", error.Status.Detail, StringComparison.Ordinal);
            }

            await node.KillAsync();
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task A_client_certificate_mapped_to_an_application_makes_the_caller_that_application()
    {
        var directory = Directory.CreateTempSubdirectory("overlay-mtls-apps-");
        try
        {
            using var server = Create("overlay node", server: true);
            using var alphaCertificate = Create("alpha", server: false);
            using var unmapped = Create("allowed but no application", server: false);
            var certificateFile = Path.Combine(directory.FullName, "control.pem");
            var keyFile = Path.Combine(directory.FullName, "control.key");
            var applicationTokenFile = Path.Combine(directory.FullName, "application.token");
            var betaTokenFile = Path.Combine(directory.FullName, "beta.token");
            await File.WriteAllTextAsync(certificateFile, server.ExportCertificatePem());
            await File.WriteAllTextAsync(keyFile, server.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());
            const string ApplicationToken = "shared-application-token-0123456789";
            const string BetaToken = "beta-application-token-0123456789";
            await File.WriteAllTextAsync(applicationTokenFile, ApplicationToken);
            await File.WriteAllTextAsync(betaTokenFile, BetaToken);

            await using var node = OverlayNode.Create(new OverlayNodeSettings
            {
                Configuration = new Dictionary<string, string?>
                {
                    ["Overlay:DataDirectory"] = Path.Combine(directory.FullName, "data"),
                    ["Overlay:Link:Url"] = "http://127.0.0.1:0",
                    ["Overlay:Control:Url"] = "https://127.0.0.1:0",
                    ["Overlay:Control:CertificateFile"] = certificateFile,
                    ["Overlay:Control:CertificateKeyFile"] = keyFile,
                    ["Overlay:Control:RequireClientCertificate"] = "true",
                    ["Overlay:Control:AllowedClientCertificates:0"] = unmapped.GetCertHashString(HashAlgorithmName.SHA256),
                    ["Overlay:Control:ApplicationTokenFile"] = applicationTokenFile,
                    ["Overlay:Control:Applications:alpha:ClientCertificate"] = alphaCertificate.GetCertHashString(HashAlgorithmName.SHA256),
                    ["Overlay:Control:Applications:beta:TokenFile"] = betaTokenFile,
                    ["Overlay:Control:Services:web:Owner"] = "alpha",
                    ["Logging:LogLevel:Default"] = "Warning",
                },
            });
            await node.StartAsync();
            using var deadline = TestTimeouts.After(30);

            // The certificate makes the holder of the shared application token 'alpha', the owner of 'web'.
            var alpha = Client(node.Control.Url, ApplicationToken, alphaCertificate, server, out var alphaChannel);
            using (alphaChannel)
            using (var listening = alpha.Listen(new V1.ListenRequest { Service = "web" }, cancellationToken: deadline.Token))
            {
                var headers = await listening.ResponseHeadersAsync;
                Assert.NotNull(headers.GetValue("overlay-listening"));
            }

            // The same token with a certificate of no application is 'application', which does not own 'web'.
            var plain = Client(node.Control.Url, ApplicationToken, unmapped, server, out var plainChannel);
            using (plainChannel)
            using (var refused = plain.Listen(new V1.ListenRequest { Service = "web" }, cancellationToken: deadline.Token))
            {
                Assert.Null((await refused.ResponseHeadersAsync).GetValue("overlay-listening"));
                await Rpc.ThrowsAsync(StatusCode.PermissionDenied, async () => await refused.ResponseStream.MoveNext(deadline.Token));
            }

            // Alpha's certificate with another application's token is refused outright.
            var mixed = Client(node.Control.Url, BetaToken, alphaCertificate, server, out var mixedChannel);
            using (mixedChannel)
            {
                var error = await Rpc.ThrowsAsync(StatusCode.PermissionDenied, async () => await mixed.GetInfoAsync(new V1.GetInfoRequest(), cancellationToken: deadline.Token));
                Assert.Contains("identifies application 'alpha'", error.Status.Detail, StringComparison.Ordinal);
            }

            await node.KillAsync();
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }
}
