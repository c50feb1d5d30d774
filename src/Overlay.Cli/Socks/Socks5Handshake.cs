using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Overlay.Cli.Socks;

/// <summary>
/// The server side of a SOCKS5 handshake (RFC 1928): no authentication, CONNECT only, a host name
/// only. Every field it reads is bounded by the protocol (at most 255 methods, a name of at most
/// 255 bytes); the caller bounds the time.
/// </summary>
internal static class Socks5Handshake
{
    private const byte Version = 5;
    private const byte NoAuthentication = 0x00;
    private const byte NoAcceptableMethod = 0xFF;
    private const byte Connect = 0x01;
    private const byte IPv4 = 0x01;
    private const byte DomainName = 0x03;
    private const byte IPv6 = 0x04;
    private const int MaxDroppedAfterRefusal = 4096;
    private static readonly TimeSpan LingerAfterRefusal = TimeSpan.FromSeconds(2);
    private static readonly UTF8Encoding StrictUtf8 = new(false, throwOnInvalidBytes: true);

    /// <summary>
    /// Reads the greeting, answers it, and reads the request. Throws <see cref="SocksRefusal"/> for
    /// what this listener does not do, <see cref="EndOfStreamException"/> if the client hangs up.
    /// </summary>
    public static async Task<SocksRequest> NegotiateAsync(Stream stream, CancellationToken cancellationToken)
    {
        var buffer = new byte[256];
        await stream.ReadExactlyAsync(buffer.AsMemory(0, 2), cancellationToken);
        if (buffer[0] != Version)
        {
            throw new SocksRefusal(null, $"not SOCKS5 (version byte {buffer[0]}); only SOCKS5 is served");
        }

        var methods = buffer.AsMemory(0, buffer[1]);
        await stream.ReadExactlyAsync(methods, cancellationToken);
        if (!methods.Span.Contains(NoAuthentication))
        {
            await stream.WriteAsync(new byte[] { Version, NoAcceptableMethod }, cancellationToken);
            throw new SocksRefusal(null, "the client offers no method without authentication, the only one served");
        }

        await stream.WriteAsync(new byte[] { Version, NoAuthentication }, cancellationToken);

        await stream.ReadExactlyAsync(buffer.AsMemory(0, 4), cancellationToken);
        if (buffer[0] != Version)
        {
            throw new SocksRefusal(SocksReply.GeneralFailure, $"request version byte {buffer[0]}, not 5");
        }

        if (buffer[1] != Connect)
        {
            throw new SocksRefusal(SocksReply.CommandNotSupported, $"command {buffer[1]} refused: only CONNECT (1) is served");
        }

        var addressType = buffer[3];
        if (addressType is IPv4 or IPv6)
        {
            // An IP literal names no overlay service, and connecting to it would leave the overlay.
            throw new SocksRefusal(SocksReply.AddressTypeNotSupported, "an IP address refused: only <service>.<node>.overlay names are served");
        }

        if (addressType != DomainName)
        {
            throw new SocksRefusal(SocksReply.AddressTypeNotSupported, $"address type {addressType} refused: only host names are served");
        }

        await stream.ReadExactlyAsync(buffer.AsMemory(0, 1), cancellationToken);
        var nameLength = buffer[0];
        await stream.ReadExactlyAsync(buffer.AsMemory(0, nameLength + 2), cancellationToken);
        string host;
        try
        {
            host = StrictUtf8.GetString(buffer, 0, nameLength);
        }
        catch (DecoderFallbackException)
        {
            throw new SocksRefusal(SocksReply.HostUnreachable, "a host name that is not UTF-8 refused");
        }

        if (host.Length == 0 || host.Any(char.IsControl))
        {
            // Not a host name, and not to be echoed into the log either.
            throw new SocksRefusal(SocksReply.NotAllowedByRuleset, "an empty host name or one with control characters refused");
        }

        var port = BinaryPrimitives.ReadUInt16BigEndian(buffer.AsSpan(nameLength, 2));
        if (IPAddress.TryParse(host, out _))
        {
            throw new SocksRefusal(SocksReply.AddressTypeNotSupported, $"the IP address '{host}' refused: only <service>.<node>.overlay names are served");
        }

        return new SocksRequest(host, port);
    }

    /// <summary>
    /// Ends a refused connection cleanly: FIN, then what the client still sends (the rest of a
    /// refused request) is read and dropped for a moment, since closing with unread input would
    /// reset the connection and could discard the reply before the client reads it.
    /// </summary>
    public static async Task CloseAfterReplyAsync(Socket connection, CancellationToken cancellationToken)
    {
        connection.Shutdown(SocketShutdown.Send);
        using var linger = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        linger.CancelAfter(LingerAfterRefusal);
        var buffer = new byte[512];
        try
        {
            for (var dropped = 0; dropped < MaxDroppedAfterRefusal;)
            {
                var read = await connection.ReceiveAsync(buffer, SocketFlags.None, linger.Token);
                if (read == 0)
                {
                    return;
                }

                dropped += read;
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // The client neither closed nor stopped sending in time: the close below may reset it, its reply long sent.
        }
    }

    /// <summary>Sends a reply; the bound address is all zeros (the tunnel has no address to show).</summary>
    public static async Task ReplyAsync(Stream stream, SocksReply reply, CancellationToken cancellationToken) =>
        await stream.WriteAsync(new byte[] { Version, (byte)reply, 0, IPv4, 0, 0, 0, 0, 0, 0 }, cancellationToken);
}
