using System.Diagnostics.Metrics;
using System.Globalization;
using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Overlay.Host.Directory;
using Overlay.Host.Link;
using Overlay.Host.Link.Tls;
using Overlay.Host.Membership;
using Overlay.Host.Options;
using Overlay.Identity;
using Overlay.Protocol;

namespace Overlay.Host.Tests.Directory;

/// <summary>
/// A node's directory, route selector and channels built directly from options, with no host, and
/// real signed descriptors of identities nobody runs: for what a hostile network does to
/// admission and routes, at scales a cluster of real nodes cannot reach.
/// </summary>
internal sealed class DirectoryParts : IDisposable
{
    private static readonly DateTimeOffset Now = DateTimeOffset.UtcNow;
    private readonly ServiceProvider _services;
    private readonly OnionKey _onionKey = OnionKey.Create(1, Now.AddMinutes(-1), Now.AddHours(1));

    public DirectoryParts(Action<OverlayOptions>? configure = null)
    {
        var options = new OverlayOptions();
        configure?.Invoke(options);
        _services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        State = new NodeState(NodeIdentity.Create(), NetworkParameters.Default);
        var wrapped = Microsoft.Extensions.Options.Options.Create(options);
        var meters = _services.GetRequiredService<IMeterFactory>();
        Issuer = new LinkCertificateIssuer(State.Identity, options.Link.CertificateRotation, Time, NullLogger.Instance);
        Memberships = new MembershipBook(wrapped, State, meters, Time, NullLogger<MembershipBook>.Instance);
        Channels = new PeerChannels(wrapped, meters, State, Issuer,
            new LinkPeerVerifier(wrapped, meters, State, new IncomingLinks(Memberships), Time, NullLogger<LinkPeerVerifier>.Instance),
            Time, NullLogger<PeerChannels>.Instance);
        Directory = new PeerDirectory(State, wrapped, Channels, Memberships, Time, NullLogger<PeerDirectory>.Instance);
        Routes = new RouteSelector(Directory, State, wrapped, Time);
    }

    public FakeTimeProvider Time { get; } = new(Now);

    public NodeState State { get; }

    public LinkCertificateIssuer Issuer { get; }

    public PeerChannels Channels { get; }

    public MembershipBook Memberships { get; }

    public PeerDirectory Directory { get; }

    public RouteSelector Routes { get; }

    /// <summary>A genuine descriptor of a fresh identity at <paramref name="endpoint"/>.</summary>
    public NodeDescriptor Descriptor(string endpoint)
    {
        using var identity = NodeIdentity.Create();
        return NodeDescriptor.Create(identity, _onionKey, new Uri(endpoint), NetworkParameters.Default, Now);
    }

    /// <summary>Admits a fresh identity whose endpoint proof reached <paramref name="address"/>.</summary>
    public (NodeDescriptor Descriptor, bool Admitted) Admit(string address, int port = 7400)
    {
        var ip = IPAddress.Parse(address);
        var host = ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{ip}]" : ip.ToString();
        var descriptor = Descriptor(string.Create(CultureInfo.InvariantCulture, $"http://{host}:{port}"));
        return (descriptor, Directory.AddConfirmed(descriptor, ip));
    }

    public void Dispose()
    {
        Channels.Dispose();
        Issuer.Dispose();
        State.Dispose();
        _onionKey.Dispose();
        _services.Dispose();
    }
}
