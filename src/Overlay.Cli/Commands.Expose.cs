using System.CommandLine;
using System.Net;
using System.Net.Sockets;
using Overlay.Cli.Forwarding;
using Overlay.Client;
using Overlay.Protocol.Control.V1;

namespace Overlay.Cli;

/// <summary>
/// `overlay expose`: serves a named service from a local TCP target. For each tunnel offered, this
/// process dials the target (never the node: a node is never an open proxy), accepts the tunnel
/// once the target answered (refuses it otherwise), and pumps bytes both ways.
/// </summary>
internal sealed partial class Commands
{
    public Task<int> ExposeAsync(ParseResult parse, CancellationToken token) => RunAsync(parse, async client =>
    {
        var target = Endpoints.Target("--target", parse.GetValue(o.Target));
        var service = parse.GetValue(o.Service);
        var maxConnections = MaxConnections(parse);
        var connectTimeout = Seconds(parse, o.ConnectTimeout);
        var log = TextWriter.Synchronized(io.Error);
        using var listener = await client.ListenAsync(service, token);
        await log.WriteLineAsync($"exposing {target} as {(service is null ? "the node's default service" : $"service '{service}'")} of {parse.GetValue(o.Node)} (at most {maxConnections} connections at once)");
        var node = (await client.GetInfoAsync(token)).NodeId;
        await log.WriteLineAsync(service is null || !OverlayHostName.IsValidService(service)
            ? $"reach it with `overlay forward --to {node}{(service is null ? "" : $"/{service}")}`"
            : $"reach it with `overlay forward --to {node}/{service}`, or through `overlay socks` as {OverlayHostName.Format(node, service)}");
        await log.WriteLineAsync($"warning: every node of the overlay can now reach {target}; a service that trusts connections from 127.0.0.1 trusts the whole overlay");

        using var slots = new SemaphoreSlim(maxConnections);
        try
        {
            await foreach (var offer in listener.OffersAsync(token))
            {
                await slots.WaitAsync(token);
                _ = ExposeOneAsync(client, offer, target, connectTimeout, log, token).ContinueWith(
                    _ => slots.Release(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }
        }
        finally
        {
            for (var i = 0; i < maxConnections; i++)
            {
                await slots.WaitAsync(CancellationToken.None);
            }
        }

        return ExitCodes.Ok; // the node ended the registration (it is shutting down)
    }, token);

    // Never throws: each outcome is a log line, and the origin learns it as a refusal or a closed tunnel.
    private static async Task ExposeOneAsync(OverlayClient client, IncomingTunnelOffer offer, EndPoint target, TimeSpan connectTimeout, TextWriter log,
        CancellationToken token)
    {
        var name = $"tunnel {offer.TunnelId}";
        try
        {
            if (offer.Mode != TunnelMode.Duplex)
            {
                await RefuseAsync(client, offer, "a one-way tunnel has no reply, and a TCP service needs both ways", log, token);
                return;
            }

            var connection = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                using (var dialing = CancellationTokenSource.CreateLinkedTokenSource(token))
                {
                    dialing.CancelAfter(connectTimeout);
                    try
                    {
                        await connection.ConnectAsync(target, dialing.Token);
                    }
                    catch (OperationCanceledException) when (!token.IsCancellationRequested)
                    {
                        await RefuseAsync(client, offer, $"{target} did not answer within {connectTimeout.TotalSeconds:0.#} s (--connect-timeout)", log, token);
                        return;
                    }
                    catch (SocketException exception)
                    {
                        await RefuseAsync(client, offer, $"cannot reach {target}: {exception.SocketErrorCode}", log, token);
                        return;
                    }
                }

                await using var tunnel = await client.AcceptAsync(offer, token);
                await TunnelPump.RunAsync(connection, tunnel, token);
            }
            catch
            {
                TunnelPump.Reset(connection);
                throw;
            }
            finally
            {
                connection.Dispose();
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            // Stopping: every connection ends with the command.
        }
        catch (Exception exception)
        {
            await log.WriteLineAsync($"overlay: {name} to {target} closed: {FailureText.Of(exception)}");
        }
    }

    private static async Task RefuseAsync(OverlayClient client, IncomingTunnelOffer offer, string why, TextWriter log, CancellationToken token)
    {
        await log.WriteLineAsync($"overlay: tunnel {offer.TunnelId} refused: {why}");
        await client.RefuseAsync(offer.TunnelId, token);
    }

    private int MaxConnections(ParseResult parse) => parse.GetValue(o.MaxConnections) is > 0 and var max
        ? max
        : throw new CliException(ExitCodes.Usage, "--max-connections must be at least 1");

    // A tunnel deadline may be as long as the protocol allows (6 h); a handshake or dial timeout an hour.
    private static TimeSpan Seconds(ParseResult parse, Option<double> option, double most = 3600) => parse.GetValue(option) is > 0 and var seconds && seconds <= most
        ? TimeSpan.FromSeconds(seconds)
        : throw new CliException(ExitCodes.Usage, $"{option.Name} must be a number of seconds above 0 and at most {most}");
}
