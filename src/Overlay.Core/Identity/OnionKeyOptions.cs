namespace Overlay.Identity;

/// <summary>How a node rotates its onion keys and sizes their replay caches (bind from configuration).</summary>
public sealed class OnionKeyOptions
{
    /// <summary>The shortest epoch accepted by <see cref="Validate"/>.</summary>
    public static readonly TimeSpan MinEpochLength = TimeSpan.FromMinutes(1);

    /// <summary>The fewest live epochs <see cref="MaxLiveEpochs"/> may allow: the current one and its predecessor in the overlap window.</summary>
    public const int MinLiveEpochs = 2;

    /// <summary>How long one onion key is published before the next replaces it. Default: 1 day.</summary>
    public TimeSpan EpochLength { get; set; } = TimeSpan.FromDays(1);

    /// <summary>
    /// How long headers built for the previous epoch are still accepted after a rotation, so
    /// tunnels set up against a just-replaced descriptor survive. Default: 1 hour.
    /// </summary>
    public TimeSpan OverlapWindow { get; set; } = TimeSpan.FromHours(1);

    /// <summary>How far another node's clock may be off when checking descriptor times. Default: 5 minutes.</summary>
    public TimeSpan ClockSkew { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// The most header tags one epoch's replay cache holds; when full, new tunnels in that epoch
    /// are refused. About <see cref="Onion.ReplayCache.ApproximateBytesPerEntry"/> bytes each.
    /// Default: 1,000,000.
    /// </summary>
    public int ReplayCacheCapacity { get; set; } = 1_000_000;

    /// <summary>The fill fraction of the replay cache at which the key is rotated early. Default: 0.8.</summary>
    public double RotateWhenReplayCacheFraction { get; set; } = 0.8;

    /// <summary>
    /// The most epochs held at once (each with its replay cache): a rotation that would exceed it
    /// retires the oldest epoch at once, overlap window or not. Bounds the memory early rotations
    /// can pin. Default: 3.
    /// </summary>
    public int MaxLiveEpochs { get; set; } = 3;

    /// <summary>
    /// The shortest time between a rotation and an early one (asked for by the control API or a
    /// nearly full replay cache); an earlier request is deferred to that moment, never dropped.
    /// Bounds how fast a peer filling the replay cache can make the node churn keys. Default: 10 minutes.
    /// </summary>
    public TimeSpan MinEarlyRotationInterval { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Returns null when the options are usable, otherwise the first problem found.</summary>
    public string? Validate()
    {
        if (EpochLength < MinEpochLength)
        {
            return $"EpochLength must be at least {MinEpochLength}, not {EpochLength}";
        }

        if (OverlapWindow < TimeSpan.Zero || OverlapWindow > EpochLength)
        {
            return $"OverlapWindow must be between 0 and EpochLength ({EpochLength}), not {OverlapWindow}";
        }

        if (ClockSkew < TimeSpan.Zero || ClockSkew >= EpochLength)
        {
            return $"ClockSkew must be at least 0 and shorter than EpochLength ({EpochLength}), not {ClockSkew}";
        }

        if (ReplayCacheCapacity < 1)
        {
            return $"ReplayCacheCapacity must be at least 1, not {ReplayCacheCapacity}";
        }

        // Written as a negation so NaN fails too.
        if (!(RotateWhenReplayCacheFraction > 0 && RotateWhenReplayCacheFraction <= 1))
        {
            return $"RotateWhenReplayCacheFraction must be greater than 0 and at most 1, not {RotateWhenReplayCacheFraction}";
        }

        if (MaxLiveEpochs < MinLiveEpochs)
        {
            return $"MaxLiveEpochs must be at least {MinLiveEpochs} (the current epoch and the one in its overlap window), not {MaxLiveEpochs}";
        }

        if (MinEarlyRotationInterval < TimeSpan.Zero || MinEarlyRotationInterval >= EpochLength)
        {
            return $"MinEarlyRotationInterval must be at least 0 and shorter than EpochLength ({EpochLength}), not {MinEarlyRotationInterval}";
        }

        return null;
    }
}
