namespace Overlay.Cells;

/// <summary>
/// The guard on each direction of a codec: a direction's sequence number is read, used and advanced
/// by one caller at a time. Two callers at once would take the same number (a repeated GCM nonce and
/// relay keystream, which reveal the XOR of two plaintexts, or one cell accepted twice), so the second
/// is refused rather than serialised: overlapping calls are a bug of the caller, and a flag costs one
/// interlocked exchange per call where a lock would cost more on every cell.
/// </summary>
internal static class SingleWriter
{
    /// <summary>Marks the direction whose flag is <paramref name="busy"/> as in use, or throws when it already is.</summary>
    /// <exception cref="InvalidOperationException">Another call is using this direction.</exception>
    public static void Enter(ref int busy, string direction)
    {
        if (Interlocked.Exchange(ref busy, 1) != 0)
        {
            Refuse(direction);
        }
    }

    /// <summary>Releases the direction; call it in a <c>finally</c> after a successful <see cref="Enter"/>.</summary>
    public static void Exit(ref int busy) => Volatile.Write(ref busy, 0);

    private static void Refuse(string direction) =>
        throw new InvalidOperationException($"one writer at a time: the {direction} of this tunnel is already in use by another call");
}
