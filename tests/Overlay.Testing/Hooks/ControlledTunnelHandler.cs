using System.Collections.Concurrent;
using Overlay.Host.Tunnels;
using Overlay.Onion;

namespace Overlay.Testing.Hooks;

/// <summary>
/// The destination handler of every test node: echoes like <see cref="EchoTunnelHandler"/>
/// (replying as it reads), except that a request starting with a registered 16-byte tag makes it
/// stop reading until the test releases it, so a test can stall a destination.
/// </summary>
internal sealed class ControlledTunnelHandler : ITunnelHandler
{
    public const int TagSize = 16;

    private readonly ConcurrentDictionary<Guid, Stall> _stalls = new();

    /// <summary>Registers a stall; a request that starts with <see cref="Stall.Tag"/> waits for <see cref="Stall.Release"/>.</summary>
    public Stall RegisterStall()
    {
        var stall = new Stall(Guid.NewGuid());
        _stalls[stall.Id] = stall;
        return stall;
    }

    public async Task HandleAsync(IncomingTunnel tunnel, CancellationToken cancellationToken)
    {
        var buffer = new byte[tunnel.ReplyChunkSize];
        var prefix = 0;
        var ended = false;
        while (prefix < TagSize)
        {
            var read = await tunnel.ReadAsync(buffer.AsMemory(prefix), cancellationToken);
            if (read == 0)
            {
                ended = true;
                break;
            }

            prefix += read;
        }

        if (prefix >= TagSize && _stalls.TryGetValue(new Guid(buffer.AsSpan(0, TagSize)), out var stall))
        {
            stall.MarkReached();
            await stall.Released.WaitAsync(cancellationToken);
        }

        var duplex = tunnel.Mode == TunnelMode.Duplex;
        if (duplex && prefix > 0)
        {
            await tunnel.WriteAsync(buffer.AsMemory(0, prefix), cancellationToken);
        }

        if (!ended)
        {
            int read;
            while ((read = await tunnel.ReadAsync(buffer, cancellationToken)) > 0)
            {
                if (duplex)
                {
                    await tunnel.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
                }
            }
        }

        if (duplex)
        {
            await tunnel.CompleteAsync(cancellationToken);
        }
    }

    /// <summary>One registered stall.</summary>
    internal sealed class Stall(Guid id)
    {
        private readonly TaskCompletionSource _reached = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Guid Id { get; } = id;

        /// <summary>The bytes a request starts with to be stalled.</summary>
        public byte[] Tag => Id.ToByteArray();

        /// <summary>Completes when a destination handler reached the stall.</summary>
        public Task Reached => _reached.Task;

        internal Task Released => _released.Task;

        public void Release() => _released.TrySetResult();

        internal void MarkReached() => _reached.TrySetResult();
    }
}
