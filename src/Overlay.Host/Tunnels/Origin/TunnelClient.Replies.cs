using System.Diagnostics;
using Overlay.Errors;
using Overlay.Host.Telemetry;
using Overlay.Onion;
using Overlay.Replies;

namespace Overlay.Host.Tunnels;

/// <summary>Sending one reply over a reply block someone else made (docs/protocol.md §7.8).</summary>
public sealed partial class TunnelClient
{
    /// <summary>
    /// Sends <paramref name="reply"/> over <paramref name="block"/> to its maker, whoever and wherever that is,
    /// and returns once the maker's receipt confirms it. Never retried: a block is single use. Fails with
    /// <see cref="TunnelErrorKind.Expired"/> for a block past its expiry, <see cref="TunnelErrorKind.Replayed"/>
    /// (at hop 1) for one already used, <see cref="TunnelErrorKind.LimitExceeded"/> for a reply over
    /// <paramref name="maxReplyBytes"/>; a failure further along the route is not attributable (hop 0 or
    /// <see cref="TunnelErrorKind.Tampered"/>: the holder cannot read a relay's error cell).
    /// </summary>
    public async Task<ReplySent> SendReplyAsync(ReplyBlock block, ReadOnlyMemory<byte> reply, int maxReplyBytes, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(block);
        if (_registry.Draining)
        {
            throw new TunnelException(TunnelErrorKind.Busy, 0, "this node is shutting down");
        }

        if (reply.Length > maxReplyBytes)
        {
            throw new TunnelException(TunnelErrorKind.LimitExceeded, 0, $"a reply is at most {maxReplyBytes} bytes (Overlay:Replies:MaxReplyBytes)");
        }

        var started = _time.GetTimestamp();
        // Expired here (typed) rather than at a hop that no longer holds the block's epoch.
        var codec = block.CreateCodec(_node.Network, _time.GetUtcNow());
        var firstHop = _directory.Find(block.FirstHop)?.Descriptor;
        if (firstHop is null)
        {
            codec.Dispose();
            throw new TunnelException(TunnelErrorKind.UnknownNextHop, 1, $"the reply block's first hop ({block.FirstHop.ToShortString()}) is not in this node's directory");
        }

        var deadline = new CancellationTokenSource(DeadlineClasses.FromTimeSpan(_options.Tunnels.DefaultDeadline).ToTimeSpan(), _time);
        var lifetime = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, cancellationToken);
        var activity = OverlayTelemetry.ActivitySource.StartActivity("overlay.reply", ActivityKind.Client);
        activity?.SetTag(TunnelTracing.NodeTag, _node.Id.ToString());
        activity?.SetTag(OverlayTelemetry.RoleTag, TunnelRoles.Origin);
        var oneShot = reply.Length <= MaxInitialDataBytes;
        var request = new TunnelRequest
        {
            Mode = TunnelMode.OneWay,
            InitialData = oneShot ? reply : reply[..MaxInitialDataBytes],
            CompleteWithInitialData = oneShot,
        };

        OverlayTunnel tunnel;
        try
        {
            tunnel = await ConnectAsync([firstHop], block.Header.ToArray(), codec, request, deadline, lifetime, activity);
        }
        catch (TunnelException failure)
        {
            _metrics.TunnelFailed(TunnelRoles.Origin, failure.Kind);
            TunnelTracing.Fail(activity, failure.Kind, "open");
            activity?.Dispose();
            lifetime.Dispose();
            deadline.Dispose();
            throw;
        }
        catch
        {
            activity?.Dispose();
            lifetime.Dispose();
            deadline.Dispose();
            throw;
        }

        await using (tunnel)
        {
            if (!oneShot)
            {
                await tunnel.WriteAsync(reply[MaxInitialDataBytes..], final: true, cancellationToken);
            }

            // A one-way tunnel's read ends (0) only with the maker's receipt for every cell.
            if (await tunnel.ReadAsync(new byte[1], cancellationToken) != 0)
            {
                throw new TunnelException(TunnelErrorKind.ProtocolViolation, 0, "the maker of the reply block sent data back");
            }
        }

        return new ReplySent(block.FirstHop, reply.Length, _time.GetElapsedTime(started));
    }
}
