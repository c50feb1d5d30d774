using Overlay.Onion;

namespace Overlay.Protocol;

/// <summary>How forward cells are protected between hops (guarantee 3, docs/protocol.md).</summary>
public enum CellConstruction : byte
{
    /// <summary>
    /// Length-preserving AES-256-CTR layer per relay around an end-to-end AES-256-GCM layer.
    /// A modified forward cell is detected at the destination.
    /// </summary>
    Baseline = 1,

    /// <summary>
    /// Baseline plus a per-cell array of MaxRelays + 1 MACs that each hop verifies, shifts and
    /// refills, so a modified forward cell is detected at the next hop.
    /// </summary>
    MacArray = 2,
}

/// <summary>
/// The parameters every node of one network must share. They are in every descriptor, and a
/// node with other parameters is rejected with <see cref="Errors.TunnelErrorKind.NetworkMismatch"/>.
/// </summary>
public sealed record NetworkParameters
{
    /// <summary>The default maximum number of relays in a route.</summary>
    public const int DefaultMaxRelays = 32;

    /// <summary>The default cell size in bytes (see docs/protocol.md for why).</summary>
    public const int DefaultCellSize = 4096;

    /// <summary>The largest MaxRelays the header format allows (the slot count fits a byte).</summary>
    public const int MaxRelaysLimit = 254;

    /// <summary>The smallest cell size accepted.</summary>
    public const int MinCellSize = 512;

    /// <summary>The largest cell size accepted (a cell must fit comfortably in one HTTP/2 window).</summary>
    public const int MaxCellSize = 32 * 1024;

    /// <summary>The smallest payload a forward cell must be able to carry.</summary>
    public const int MinPayloadPerCell = 256;

    /// <summary>The default idle timeout: no cell either way for this long ends a tunnel at every hop.</summary>
    public static readonly TimeSpan DefaultIdleTimeout = TimeSpan.FromMinutes(2);

    /// <summary>
    /// The shortest idle timeout a network may choose. Below about 30 s only test networks make sense:
    /// every quiet tunnel sends a padding cell each third of it.
    /// </summary>
    public static readonly TimeSpan MinIdleTimeout = TimeSpan.FromSeconds(1);

    /// <summary>The longest idle timeout a network may choose (it travels as a uint16 of seconds).</summary>
    public static readonly TimeSpan MaxIdleTimeout = TimeSpan.FromHours(1);

    /// <summary>The network's defaults: 32 relays, 4 KiB cells, the baseline construction.</summary>
    public static NetworkParameters Default { get; } = new();

    /// <summary>The maximum number of relays in a route; the header has room for MaxRelays + 1 hops.</summary>
    public int MaxRelays { get; init; } = DefaultMaxRelays;

    /// <summary>The size of every cell on the wire, in bytes; a multiple of 16.</summary>
    public int CellSize { get; init; } = DefaultCellSize;

    /// <summary>The forward cell construction.</summary>
    public CellConstruction Construction { get; init; } = CellConstruction.Baseline;

    /// <summary>
    /// The longest deadline class a header may carry. A network parameter, not a per-node cap: a cap
    /// that differed between nodes would break routes at random. Default 6 hours.
    /// </summary>
    public DeadlineClass MaxDeadlineClass { get; init; } = DeadlineClass.Hours6;

    /// <summary>
    /// A hop ends a tunnel after no cell in either direction for this long; each open end sends a
    /// padding cell after a third of it without sending anything. Whole seconds. Default 2 minutes.
    /// </summary>
    public TimeSpan IdleTimeout { get; init; } = DefaultIdleTimeout;

    /// <summary>How long an end may stay silent before it sends a padding cell: a third of <see cref="IdleTimeout"/>.</summary>
    public TimeSpan PaddingInterval => IdleTimeout / 3;

    /// <summary>Returns null when the parameters are usable, otherwise the reason they are not.</summary>
    public string? Validate()
    {
        if (MaxRelays is < 1 or > MaxRelaysLimit)
        {
            return $"MaxRelays must be between 1 and {MaxRelaysLimit}, not {MaxRelays}";
        }

        if (CellSize is < MinCellSize or > MaxCellSize || CellSize % 16 != 0)
        {
            return $"CellSize must be a multiple of 16 between {MinCellSize} and {MaxCellSize}, not {CellSize}";
        }

        if (Construction is not (CellConstruction.Baseline or CellConstruction.MacArray))
        {
            return $"unknown cell construction {(byte)Construction}";
        }

        if (!DeadlineClasses.IsDefined(MaxDeadlineClass))
        {
            return $"MaxDeadlineClass must be a deadline class (0..7), not {(byte)MaxDeadlineClass}";
        }

        if (IdleTimeout < MinIdleTimeout || IdleTimeout > MaxIdleTimeout || IdleTimeout.Ticks % TimeSpan.TicksPerSecond != 0)
        {
            return $"IdleTimeout must be whole seconds between {MinIdleTimeout.TotalSeconds:0} and {MaxIdleTimeout.TotalSeconds:0}, not {IdleTimeout}";
        }

        var layout = new Cells.CellLayout(this, validate: false);
        if (layout.ForwardPayloadCapacity < MinPayloadPerCell)
        {
            return $"a {CellSize}-byte cell with the {Construction} construction at MaxRelays {MaxRelays} " +
                   $"carries only {layout.ForwardPayloadCapacity} payload bytes (at least {MinPayloadPerCell} needed)";
        }

        return null;
    }

    /// <summary>Throws <see cref="ArgumentException"/> when <see cref="Validate"/> finds a problem.</summary>
    public NetworkParameters EnsureValid()
    {
        var problem = Validate();
        return problem is null ? this : throw new ArgumentException(problem);
    }
}
