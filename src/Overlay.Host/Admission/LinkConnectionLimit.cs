using System.Net;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Overlay.Host.Link;

namespace Overlay.Host.Admission;

/// <summary>
/// Caps the connections of one listener, in total and per fairness key. Kestrel's own connection
/// limits are server-wide, so a flood on the link endpoint would also shut out the control API;
/// this middleware belongs to the link listener alone. A connection over the cap is closed before
/// any HTTP/2 is spoken.
/// </summary>
internal static class LinkConnectionLimit
{
    public static void Apply(ListenOptions listen, LinkAdmission admission) => listen.Use(next => async connection =>
    {
        var key = PeerAddress.FairnessKey((connection.RemoteEndPoint as IPEndPoint)?.Address);
        if (!admission.Connections.TryEnter(key))
        {
            admission.Refused(key, AdmissionLimits.Connections);
            return;
        }

        try
        {
            await next(connection);
        }
        finally
        {
            admission.Connections.Exit(key);
        }
    });
}
