using Grpc.Core;

namespace Overlay.Client;

/// <summary>
/// A message with a reply block was delivered but its reply did not come in time (reason <c>no_reply</c>).
/// While the block lives, a later reply is kept by the node: collect it with
/// <see cref="OverlayClient.AwaitReplyAsync"/> and <see cref="ReplyHandle"/>.
/// </summary>
public sealed class OverlayNoReplyException(string? replyHandle, string message, Exception? innerException = null)
    : OverlayException(StatusCode.DeadlineExceeded, "no_reply", message, innerException)
{
    /// <summary>The block's handle at the node; null once the block has expired.</summary>
    public string? ReplyHandle { get; } = replyHandle;
}
