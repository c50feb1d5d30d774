using System.Security.Authentication;
using Overlay.Links;

namespace Overlay.Host.Link.Tls;

/// <summary>
/// Thrown from the dialer's certificate check so the failed handshake carries why: the origin
/// finds it in the failure's causes and reports <see cref="Errors.TunnelErrorKind.LinkUnauthenticated"/>.
/// </summary>
internal sealed class LinkCertificateRefusedException(Uri endpoint, LinkCertificateError error)
    : AuthenticationException($"{endpoint}: {error.Describe()}")
{
    public LinkCertificateError Error { get; } = error;

    /// <summary>The refusal among <paramref name="exception"/>'s causes, or null.</summary>
    public static LinkCertificateRefusedException? Find(Exception? exception)
    {
        for (var cause = exception; cause is not null; cause = cause is Grpc.Core.RpcException rpc ? rpc.Status.DebugException ?? rpc.InnerException : cause.InnerException)
        {
            if (cause is LinkCertificateRefusedException refused)
            {
                return refused;
            }
        }

        return null;
    }
}
