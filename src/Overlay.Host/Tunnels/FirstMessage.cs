using Overlay.Protocol.V1;

namespace Overlay.Host.Tunnels;

/// <summary>
/// A hop's first request message, handed on once. The async methods of a tunnel live as long as the
/// tunnel, and any of them holding the message would keep its buffers (the header alone is ~4 KiB) for
/// that long; taking it leaves only the pump that forwards it, until the next message.
/// </summary>
internal sealed class FirstMessage(LinkMessage message)
{
    private LinkMessage? _message = message;

    /// <summary>The message, before it is taken.</summary>
    public LinkMessage Message => _message ?? throw new InvalidOperationException("the first message was already handed on");

    public LinkMessage Take() => Interlocked.Exchange(ref _message, null) ?? throw new InvalidOperationException("the first message was already handed on");
}
