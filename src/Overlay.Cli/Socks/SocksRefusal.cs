namespace Overlay.Cli.Socks;

/// <summary>A SOCKS request this listener refuses: the reply to send (none when the protocol has no way to say it) and why.</summary>
internal sealed class SocksRefusal(SocksReply? reply, string message) : Exception(message)
{
    /// <summary>The reply code to send before closing; null to close without a reply.</summary>
    public SocksReply? Reply { get; } = reply;
}
