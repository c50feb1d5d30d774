using Overlay.Identity;

namespace Overlay.Host.Tunnels;

/// <summary>A reply sent over a reply block and confirmed by its maker's receipt.</summary>
/// <param name="FirstHop">The only hop of the reply route the sender knows.</param>
/// <param name="Bytes">The reply's size.</param>
/// <param name="Elapsed">From starting the reply to the receipt.</param>
public sealed record ReplySent(NodeId FirstHop, int Bytes, TimeSpan Elapsed);
