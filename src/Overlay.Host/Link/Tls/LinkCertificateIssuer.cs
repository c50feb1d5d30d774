using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Overlay.Identity;
using Overlay.Links;

namespace Overlay.Host.Link.Tls;

/// <summary>
/// Issues this node's link certificate: a fresh ECDSA P-256 key each time, signed into a
/// certificate by the node identity (<see cref="LinkCertificate"/>). Rotated every
/// <c>Overlay:Link:CertificateRotation</c>; each certificate is valid for two rotation periods
/// (plus a backdated hour for peers whose clocks lag), so one issued just before a rotation still
/// serves connections opened with it, and the previous one stays alive until the next rotation.
/// Rotation happens on use, so an idle node does no work.
/// </summary>
internal sealed class LinkCertificateIssuer : IDisposable
{
    /// <summary>How far NotBefore lies before the moment of issue.</summary>
    public static readonly TimeSpan Backdate = TimeSpan.FromHours(1);

    private readonly NodeIdentity _identity;
    private readonly TimeSpan _rotation;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private LinkCredential? _current;
    private LinkCredential? _previous;
    private bool _disposed;

    public LinkCertificateIssuer(NodeIdentity identity, TimeSpan rotation, TimeProvider time, ILogger logger)
    {
        _identity = identity;
        _rotation = rotation;
        _time = time;
        _logger = logger;
    }

    /// <summary>The certificate to present now, issuing a new one when the current one is due.</summary>
    public LinkCredential Current
    {
        get
        {
            var current = Volatile.Read(ref _current);
            return current is not null && _time.GetUtcNow() < current.RotateAt ? current : Rotate();
        }
    }

    private LinkCredential Rotate()
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var now = _time.GetUtcNow();
            if (_current is { } current && now < current.RotateAt)
            {
                return current; // another caller rotated it first
            }

            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var certificate = LinkCertificate.Create(_identity, key, now - Backdate, now + (2 * _rotation));
            var issued = new LinkCredential(certificate, now + _rotation);
            // Connections already made with the one before the previous have long finished their handshake.
            _previous?.Dispose();
            _previous = _current;
            Volatile.Write(ref _current, issued);
            LinkTlsLog.CertificateIssued(_logger, certificate.NotAfter.ToUniversalTime(), issued.RotateAt.UtcDateTime);
            return issued;
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
            _previous?.Dispose();
            _current?.Dispose();
            _previous = _current = null;
        }
    }
}
