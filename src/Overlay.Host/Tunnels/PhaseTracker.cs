namespace Overlay.Host.Tunnels;

/// <summary>The last phase a tunnel reached at this hop, for the span of a tunnel that fails or times out.</summary>
internal sealed class PhaseTracker(string initial)
{
    private volatile string _current = initial;

    public string Current
    {
        get => _current;
        set => _current = value;
    }
}
