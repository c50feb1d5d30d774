using System.CommandLine;
using System.Net;
using Overlay.Cli.Forwarding;
using Overlay.Client;

namespace Overlay.Cli;

/// <summary>`overlay forward`: each TCP connection to a local port becomes one tunnel to a service.</summary>
internal sealed partial class Commands
{
    public Task<int> ForwardAsync(ParseResult parse, CancellationToken token) => RunAsync(parse, async client =>
    {
        var listen = Endpoints.Listen("--listen", parse.GetValue(o.Listen));
        var (node, service) = ParseServiceTarget(parse.GetValue(o.ForwardTo));
        var target = new OverlayTarget
        {
            Destination = node,
            Service = service,
            Relays = (int)parse.GetValue(o.Relays),
            Deadline = Seconds(parse, o.ConnectionDeadline, most: 6 * 3600),
        };
        var log = TextWriter.Synchronized(io.Error);
        var maxConnections = MaxConnections(parse);
        if (!IPAddress.IsLoopback(listen.Address))
        {
            await log.WriteLineAsync($"warning: {listen} is not a loopback address: whoever reaches it uses your tunnels");
        }

        var announcement = $"forwarding {listen} to {(service ?? "the default service")} at {node} through {target.Relays} relays (a tunnel per connection, at most {maxConnections} at once, each for at most {target.Deadline})";
        await ConnectionLoop.RunAsync(listen, maxConnections, announcement, async (connection, stop) =>
        {
            await using var tunnel = await client.OpenTunnelAsync(target, stop);
            await TunnelPump.RunAsync(connection, tunnel, stop);
        }, log, token);
        return ExitCodes.Ok;
    }, token);

    // `<node>/<service>` or `<node>`, the node in hex or in the base32 of its host name.
    private static (string Node, string? Service) ParseServiceTarget(string? value)
    {
        var slash = value?.IndexOf('/') ?? -1;
        var node = slash < 0 ? value : value![..slash];
        var service = slash < 0 ? null : value![(slash + 1)..];
        if (node is { Length: 64 } && node.All(Uri.IsHexDigit) && service is null or { Length: > 0 })
        {
            return (node.ToLowerInvariant(), service);
        }

        if (node is { Length: OverlayHostName.NodeLabelLength }
            && OverlayHostName.TryParse($"{service ?? "x"}.{node}{OverlayHostName.Suffix}", out var id, out _, out _))
        {
            return (id, service);
        }

        throw new CliException(ExitCodes.Usage, $"--to '{value}' is not <node id>/<service> (the node id in 64 hex digits or its 52-character base32)");
    }
}
