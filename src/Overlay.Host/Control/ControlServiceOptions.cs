namespace Overlay.Host.Control;

/// <summary>One named service this node hosts (<c>Overlay:Control:Services:&lt;name&gt;</c>).</summary>
public sealed class ControlServiceOptions
{
    /// <summary>The longest service name in bytes of UTF-8: the onion's deliver slot holds no more (docs/protocol.md section 6.1).</summary>
    public const int MaxNameBytes = 32;

    /// <summary>The caller that may listen for the service: operator, application, or an application's name.</summary>
    public string? Owner { get; set; }

    /// <summary>True for 1 to 32 bytes of UTF-8 without NUL, as the deliver slot carries it, except the name multiplexed routes use.</summary>
    public static bool IsValidName(string name) =>
        name.Length > 0 && name != Tunnels.Streams.StreamFrames.RouteService && !name.Contains('\0', StringComparison.Ordinal) && System.Text.Encoding.UTF8.GetByteCount(name) <= MaxNameBytes;
}
