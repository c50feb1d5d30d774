namespace Overlay.Host.Tests.Hostile;

/// <summary>The HTTP/2 window switch comes from the runtime configuration, before any node code runs.</summary>
public sealed class RuntimeConfigTests
{
    private const string Switch = "System.Net.SocketsHttpHandler.Http2FlowControl.DisableDynamicWindowSizing";

    [Fact]
    public void Dynamic_window_sizing_is_off_from_the_runtime_configuration()
    {
        var config = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Overlay.Host.Tests.runtimeconfig.json"));
        Assert.Contains($"\"{Switch}\": true", config, StringComparison.Ordinal);
        Assert.True(AppContext.TryGetSwitch(Switch, out var disabled) && disabled);
    }
}
