namespace Overlay.Onion;

/// <summary>What the destination does with a tunnel (carried in the destination's header slot).</summary>
public enum TunnelMode : byte
{
    /// <summary>A request stream and a reply stream back along the same route (the default).</summary>
    Duplex = 1,

    /// <summary>A request stream only; the destination sends nothing back but errors.</summary>
    OneWay = 2,

    /// <summary>Reserved: a reply over another route, carried as a reply block. Refused until built.</summary>
    ReplyBlock = 3,
}

/// <summary>
/// The tunnel's deadline, as one of a small fixed set of coarse durations. Every hop gets the same
/// class and starts its own clock when it processes the header, so the value says nothing about
/// position (a remaining time would shrink hop by hop).
/// </summary>
public enum DeadlineClass : byte
{
    /// <summary>5 seconds.</summary>
    Seconds5 = 0,

    /// <summary>15 seconds.</summary>
    Seconds15 = 1,

    /// <summary>30 seconds.</summary>
    Seconds30 = 2,

    /// <summary>1 minute.</summary>
    Minute1 = 3,

    /// <summary>5 minutes.</summary>
    Minutes5 = 4,

    /// <summary>15 minutes.</summary>
    Minutes15 = 5,

    /// <summary>1 hour.</summary>
    Hour1 = 6,

    /// <summary>6 hours.</summary>
    Hours6 = 7,
}

/// <summary>Conversions for <see cref="DeadlineClass"/>.</summary>
public static class DeadlineClasses
{
    private static readonly TimeSpan[] Durations =
    [
        TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(15), TimeSpan.FromSeconds(30), TimeSpan.FromMinutes(1),
        TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(15), TimeSpan.FromHours(1), TimeSpan.FromHours(6),
    ];

    /// <summary>The duration of a class.</summary>
    public static TimeSpan ToTimeSpan(this DeadlineClass deadline) => Durations[(int)deadline];

    /// <summary>True for a value this version defines.</summary>
    public static bool IsDefined(DeadlineClass deadline) => (int)deadline < Durations.Length;

    /// <summary>The smallest class at least as long as <paramref name="requested"/> (the longest class if none is).</summary>
    public static DeadlineClass FromTimeSpan(TimeSpan requested)
    {
        for (var i = 0; i < Durations.Length; i++)
        {
            if (Durations[i] >= requested)
            {
                return (DeadlineClass)i;
            }
        }

        return (DeadlineClass)(Durations.Length - 1);
    }
}
