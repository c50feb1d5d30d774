using System.CommandLine;
using System.Net;
using System.Net.Sockets;
using Overlay.Cli.Forwarding;
using Overlay.Cli.Socks;
using Overlay.Client;

namespace Overlay.Cli;

/// <summary>
/// `overlay socks`: a SOCKS5 listener on loopback whose only destinations are overlay services,
/// named <c>&lt;service&gt;.&lt;node id in base32&gt;.overlay</c>. Any other name or an IP address is
/// refused with the SOCKS reply for it; nothing is ever looked up in DNS or dialed directly.
/// </summary>
internal sealed partial class Commands
{
    public Task<int> SocksAsync(ParseResult parse, CancellationToken token) => RunAsync(parse, async client =>
    {
        var listen = Endpoints.Listen("--listen", parse.GetValue(o.Listen));
        if (!IPAddress.IsLoopback(listen.Address))
        {
            throw new CliException(ExitCodes.Usage, $"--listen {listen}: the SOCKS listener serves loopback only (127.0.0.1 or ::1)");
        }

        var relays = (int)parse.GetValue(o.Relays);
        var deadline = Seconds(parse, o.ConnectionDeadline, most: 6 * 3600);
        var handshakeTimeout = Seconds(parse, o.HandshakeTimeout);
        var maxConnections = MaxConnections(parse);
        var log = TextWriter.Synchronized(io.Error);
        var announcement = $"SOCKS5 on {listen} for <service>.<node id in base32>{OverlayHostName.Suffix} through {relays} relays (at most {maxConnections} connections at once); every other destination is refused";
        await ConnectionLoop.RunAsync(listen, maxConnections, announcement,
            (connection, stop) => ServeSocksAsync(client, connection, relays, deadline, handshakeTimeout, log, stop), log, token);
        return ExitCodes.Ok;
    }, token);

    private static async Task ServeSocksAsync(OverlayClient client, Socket connection, int relays, TimeSpan deadline, TimeSpan handshakeTimeout,
        TextWriter log, CancellationToken token)
    {
        await using var stream = new NetworkStream(connection, ownsSocket: false);

        // One deadline for the greeting, the request and the tunnel's opening; lifted once it is open.
        using var handshake = CancellationTokenSource.CreateLinkedTokenSource(token);
        handshake.CancelAfter(handshakeTimeout);
        TunnelStream? tunnel = null;
        try
        {
            var request = await Socks5Handshake.NegotiateAsync(stream, handshake.Token);
            if (!OverlayHostName.TryParse(request.Host, out var node, out var service, out var problem))
            {
                var overlayName = request.Host.TrimEnd('.').EndsWith(OverlayHostName.Suffix, StringComparison.OrdinalIgnoreCase);
                throw new SocksRefusal(overlayName ? SocksReply.HostUnreachable : SocksReply.NotAllowedByRuleset, problem);
            }

            try
            {
                tunnel = await client.OpenTunnelAsync(new OverlayTarget { Destination = node, Service = service, Relays = relays, Deadline = deadline }, handshake.Token);
            }
            catch (OverlayException exception)
            {
                throw new SocksRefusal(ReplyFor(exception), $"{request.Host}: {FailureText.Of(exception)}");
            }
            catch (OperationCanceledException) when (handshake.IsCancellationRequested && !token.IsCancellationRequested)
            {
                throw new SocksRefusal(SocksReply.TtlExpired, $"{request.Host}: the tunnel did not open within {handshakeTimeout.TotalSeconds:0.#} s (--handshake-timeout)");
            }

            handshake.CancelAfter(Timeout.InfiniteTimeSpan);
            await Socks5Handshake.ReplyAsync(stream, SocksReply.Succeeded, token);
        }
        catch (SocksRefusal refusal)
        {
            if (refusal.Reply is { } reply)
            {
                await Socks5Handshake.ReplyAsync(stream, reply, token);
            }

            await log.WriteLineAsync($"overlay: SOCKS request from {connection.RemoteEndPoint} refused ({refusal.Reply?.ToString() ?? "no reply"}): {refusal.Message}");
            await Socks5Handshake.CloseAfterReplyAsync(connection, token);
            return;
        }
        catch (Exception exception)
        {
            if (tunnel is not null)
            {
                await tunnel.DisposeAsync();
            }

            if (exception is OperationCanceledException && handshake.IsCancellationRequested && !token.IsCancellationRequested)
            {
                throw new TimeoutException($"the SOCKS handshake did not finish within {handshakeTimeout.TotalSeconds:0.#} s (--handshake-timeout)");
            }

            throw;
        }

        await using (tunnel)
        {
            await TunnelPump.RunAsync(connection, tunnel, token);
        }
    }

    private static SocksReply ReplyFor(OverlayException exception) => exception switch
    {
        OverlayTunnelException { Reason: "timeout" } => SocksReply.TtlExpired,
        OverlayTunnelException => SocksReply.NetworkUnreachable,
        OverlayNotFoundException => SocksReply.HostUnreachable,
        _ => SocksReply.GeneralFailure,
    };
}
