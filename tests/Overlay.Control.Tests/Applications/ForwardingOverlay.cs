namespace Overlay.Control.Tests.Applications;

/// <summary>
/// Five nodes (A = 0 forwards, B = 1 hosts the service "web", C, D, E relay) with a short network
/// idle timeout, and the web app that B exposes. Every test here takes the three relays C, D, E.
/// </summary>
public sealed class ForwardingOverlay : IAsyncLifetime
{
    public const string Service = "web";

    /// <summary>The network's idle timeout: a quiet tunnel lives past it only through padding.</summary>
    public static readonly TimeSpan IdleTimeout = TimeSpan.FromSeconds(3);

    public TestOverlay Overlay { get; private set; } = null!;

    internal TestWebApp Web { get; private set; } = null!;

    public string B => Overlay.Nodes[1].Id.ToString();

    public async Task InitializeAsync()
    {
        Web = await TestWebApp.StartAsync(gate: 50);
        Overlay = await TestOverlay.StartAsync(5, (_, c) =>
        {
            c["Overlay:Network:IdleTimeout"] = IdleTimeout.ToString("c");
            c[$"Overlay:Control:Services:{Service}:Owner"] = "operator";
        });
    }

    public async Task DisposeAsync()
    {
        await Overlay.DisposeAsync();
        await Web.DisposeAsync();
    }
}

[CollectionDefinition(Name)]
public sealed class ForwardingOverlayCollection : ICollectionFixture<ForwardingOverlay>
{
    public const string Name = "forwarding overlay";
}
