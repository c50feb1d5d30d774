using Overlay.Identity;
using Overlay.Replies;

namespace Overlay.Host.Replies;

/// <summary>A reply block this node made and keeps the secret of, until its reply comes or it expires.</summary>
/// <param name="Handle">The local name of the block (32 hex digits): what to wait on, also after a restart.</param>
/// <param name="Block">The block to hand out; the caller disposes it once encoded.</param>
/// <param name="Route">The reply route's relays in order, then this node.</param>
public sealed record OutstandingReply(string Handle, ReplyBlock Block, IReadOnlyList<NodeId> Route);
