using System.Globalization;

namespace Overlay.Testing;

/// <summary>
/// Every deadline of every test project, scaled by <c>OVERLAY_TEST_TIMEOUT_SCALE</c> (default 1) so a
/// slow or loaded machine (or CI) can stretch them without editing code. Deadlines bound waits on
/// events; nothing here sleeps for a fixed time.
/// </summary>
internal static class TestTimeouts
{
    public const string ScaleVariable = "OVERLAY_TEST_TIMEOUT_SCALE";

    public static double Scale { get; } = ReadScale();

    /// <summary>A deadline of <paramref name="seconds"/>, scaled.</summary>
    public static TimeSpan Seconds(double seconds) => TimeSpan.FromSeconds(seconds * Scale);

    /// <summary>A token that fires after <paramref name="seconds"/>, scaled.</summary>
    public static CancellationTokenSource After(double seconds) => new(Seconds(seconds));

    /// <summary>A token that fires after <paramref name="seconds"/>, scaled, or when <paramref name="cancellationToken"/> does.</summary>
    public static CancellationTokenSource After(double seconds, CancellationToken cancellationToken)
    {
        var source = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        source.CancelAfter(Seconds(seconds));
        return source;
    }

    private static double ReadScale()
    {
        var text = Environment.GetEnvironmentVariable(ScaleVariable);
        if (string.IsNullOrEmpty(text))
        {
            return 1;
        }

        // A value that does not parse is a mistake in the CI setup, not a reason to run unscaled.
        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var scale) && scale > 0 && double.IsFinite(scale)
            ? scale
            : throw new InvalidOperationException($"{ScaleVariable}={text} is not a positive number");
    }
}
