using Overlay.Errors;

namespace Overlay.Bench.Network;

/// <summary>One soak round trip: what was asked and how it ended.</summary>
/// <param name="Relays">The relays asked for (the draw, capped at the up peers the origin knows minus the destination).</param>
/// <param name="Bytes">The request's size.</param>
/// <param name="Result">How it ended.</param>
/// <param name="Kind">The failure's kind for a typed failure, otherwise <see cref="TunnelErrorKind.None"/>.</param>
/// <param name="HopNamed">A typed failure named the hop (Hop ≥ 1).</param>
/// <param name="Milliseconds">From the call to its outcome (for a hang, until it was given up).</param>
/// <param name="DuringChurn">The trip started while a killed node was not yet replaced or its replacement not yet known to every node.</param>
internal readonly record struct SoakTrip(int Relays, int Bytes, SoakResult Result, TunnelErrorKind Kind, bool HopNamed, double Milliseconds, bool DuringChurn = false);
