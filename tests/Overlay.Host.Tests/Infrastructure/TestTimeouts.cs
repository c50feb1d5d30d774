using System.Globalization;

namespace Overlay.Host.Tests.Infrastructure;

/// <summary>
/// Every deadline in these tests, scaled by <c>OVERLAY_TEST_TIMEOUT_SCALE</c> (default 1) so a
/// slow or loaded machine can stretch them without editing code. Deadlines bound waits on events;
/// nothing here sleeps for a fixed time.
/// </summary>
internal static class TestTimeouts
{
    public const string ScaleVariable = "OVERLAY_TEST_TIMEOUT_SCALE";

    public static double Scale { get; } = ReadScale();

    /// <summary>A deadline of <paramref name="seconds"/>, scaled.</summary>
    public static TimeSpan Seconds(double seconds) => TimeSpan.FromSeconds(seconds * Scale);

    /// <summary>A token that fires after <paramref name="seconds"/>, scaled.</summary>
    public static CancellationTokenSource After(double seconds) => new(Seconds(seconds));

    private static double ReadScale()
    {
        var text = Environment.GetEnvironmentVariable(ScaleVariable);
        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var scale) && scale > 0 ? scale : 1;
    }
}
