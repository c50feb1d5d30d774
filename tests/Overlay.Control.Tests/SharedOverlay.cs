namespace Overlay.Control.Tests;

/// <summary>Shared by the tests that do not change the overlay: five nodes, A = 0 and B = 1.</summary>
public sealed class SharedOverlay : IAsyncLifetime
{
    public TestOverlay Overlay { get; private set; } = null!;

    public async Task InitializeAsync() => Overlay = await TestOverlay.StartAsync(5, (_, c) =>
    {
        c["Overlay:Control:EventsBufferSize"] = "32";
        c["Overlay:Control:MaxTunnelsPerClient"] = "8";
        c["Overlay:Control:AcceptTimeout"] = "00:00:05";
        c["Overlay:OnionKeys:MinEarlyRotationInterval"] = "00:00:00"; // RotateKeys rotates at once, however recently the node started
    });

    public async Task DisposeAsync() => await Overlay.DisposeAsync();
}

[CollectionDefinition(Name)]
public sealed class SharedOverlayCollection : ICollectionFixture<SharedOverlay>
{
    public const string Name = "shared overlay";
}
