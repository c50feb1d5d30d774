using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Overlay.Host.Options;

namespace Overlay.Host.Tests.Infrastructure;

/// <summary>
/// The buffers a tunnel's traffic can fill when one end stops reading, as the nodes are configured:
/// a link's stream window, Kestrel's response buffer and the largest link message.
/// </summary>
internal sealed record FlowControlWindows(long Window, long ResponseBuffer, long Message)
{
    public static FlowControlWindows Of(ClusterNode node)
    {
        var options = node.Services.GetRequiredService<IOptions<OverlayOptions>>().Value;
        var kestrel = node.Services.GetRequiredService<IOptions<KestrelServerOptions>>().Value;
        return new(options.Link.StreamWindowBytes, kestrel.Limits.MaxResponseBufferSize ?? 0, (long)options.Tunnels.MaxCellsPerMessage * options.Network.CellSize);
    }

    /// <summary>
    /// The most an origin can write through <paramref name="links"/> links while it does not read: the
    /// echo replies as it reads, so both directions fill: per link, the receiver's stream window forward
    /// and backward, Kestrel's response buffer on the sending side backward, and one message held by
    /// each pump in each direction.
    /// </summary>
    public long OriginNotReading(int links) => links * ((2L * Window) + ResponseBuffer + (3L * Message));

    /// <summary>
    /// The most an origin can write through <paramref name="links"/> links to a destination that does
    /// not read: only the forward direction fills, each link's stream window and one message per pump,
    /// plus the message the stalled handler holds.
    /// </summary>
    public long DestinationNotReading(int links) => (links * (Window + Message)) + Message;
}
