namespace Overlay.Host.Replies;

/// <summary>Reply blocks this node makes and the replies it sends over others' (<c>Overlay:Replies</c>).</summary>
public sealed class ReplyOptions
{
    /// <summary>Blocks this node keeps outstanding at once; beyond it a new one is refused (too_many_reply_blocks). Default 256; 1 to 65,536.</summary>
    public int MaxOutstanding { get; set; } = 256;

    /// <summary>
    /// The longest a block may stay valid; its expiry is this or the earliest onion-key expiry of its route,
    /// whichever comes first. Default 1 hour; 1 second to 7 days.
    /// </summary>
    public TimeSpan MaxLifetime { get; set; } = TimeSpan.FromHours(1);

    /// <summary>The largest reply this node accepts over one of its blocks, and sends over another's. Default 64 KiB; 1 byte to 16 MiB.</summary>
    public int MaxReplyBytes { get; set; } = 64 * 1024;

    /// <summary>The deadline a reply tunnel runs under at every hop of a block this node makes (a deadline class). Default 30 s.</summary>
    public TimeSpan ReplyDeadline { get; set; } = TimeSpan.FromSeconds(30);
}
