using Overlay.Identity;

namespace Overlay.Tests.Identity;

public sealed class OnionKeyOptionsTests
{
    [Fact]
    public void Defaults_are_the_documented_ones_and_valid()
    {
        var options = new OnionKeyOptions();

        Assert.Equal(TimeSpan.FromDays(1), options.EpochLength);
        Assert.Equal(TimeSpan.FromHours(1), options.OverlapWindow);
        Assert.Equal(TimeSpan.FromMinutes(5), options.ClockSkew);
        Assert.Equal(1_000_000, options.ReplayCacheCapacity);
        Assert.Equal(0.8, options.RotateWhenReplayCacheFraction);
        Assert.Equal(3, options.MaxLiveEpochs);
        Assert.Equal(TimeSpan.FromMinutes(10), options.MinEarlyRotationInterval);
        Assert.Null(options.Validate());
    }

    public static TheoryData<Action<OnionKeyOptions>, string> Invalid() => new()
    {
        { o => o.EpochLength = TimeSpan.Zero, nameof(OnionKeyOptions.EpochLength) },
        { o => o.EpochLength = TimeSpan.FromSeconds(59), nameof(OnionKeyOptions.EpochLength) },
        { o => o.OverlapWindow = TimeSpan.FromSeconds(-1), nameof(OnionKeyOptions.OverlapWindow) },
        { o => o.OverlapWindow = TimeSpan.FromDays(2), nameof(OnionKeyOptions.OverlapWindow) },
        { o => o.ClockSkew = TimeSpan.FromSeconds(-1), nameof(OnionKeyOptions.ClockSkew) },
        { o => o.ClockSkew = TimeSpan.FromDays(1), nameof(OnionKeyOptions.ClockSkew) },
        { o => o.ReplayCacheCapacity = 0, nameof(OnionKeyOptions.ReplayCacheCapacity) },
        { o => o.RotateWhenReplayCacheFraction = 0, nameof(OnionKeyOptions.RotateWhenReplayCacheFraction) },
        { o => o.RotateWhenReplayCacheFraction = 1.01, nameof(OnionKeyOptions.RotateWhenReplayCacheFraction) },
        { o => o.RotateWhenReplayCacheFraction = double.NaN, nameof(OnionKeyOptions.RotateWhenReplayCacheFraction) },
        { o => o.MaxLiveEpochs = 1, nameof(OnionKeyOptions.MaxLiveEpochs) },
        { o => o.MinEarlyRotationInterval = TimeSpan.FromSeconds(-1), nameof(OnionKeyOptions.MinEarlyRotationInterval) },
        { o => o.MinEarlyRotationInterval = TimeSpan.FromDays(1), nameof(OnionKeyOptions.MinEarlyRotationInterval) },
    };

    [Theory]
    [MemberData(nameof(Invalid))]
    public void Validate_names_the_bad_setting(Action<OnionKeyOptions> change, string setting)
    {
        var options = new OnionKeyOptions();
        change(options);

        var problem = options.Validate();

        Assert.NotNull(problem);
        Assert.StartsWith(setting, problem, StringComparison.Ordinal);
    }
}
