namespace Overlay.Host.Replies;

/// <summary>A reply that arrived over one of this node's reply blocks.</summary>
/// <param name="Handle">The block's local name.</param>
/// <param name="Data">The reply bytes, authenticated end to end.</param>
/// <param name="ReceivedAt">When its end arrived.</param>
public sealed record ReceivedReply(string Handle, byte[] Data, DateTimeOffset ReceivedAt);
