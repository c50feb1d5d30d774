using System.CommandLine;
using System.Globalization;
using System.Text;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Overlay.Client;
using Overlay.Protocol.Control.V1;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Overlay.Cli;

/// <summary>The commands' actions.</summary>
internal sealed partial class Commands(GlobalOptions o, CliIO io)
{
    private static readonly JsonFormatter Formatter = new(JsonFormatter.Settings.Default.WithFormatDefaultValues(true));
    private static readonly UTF8Encoding StrictUtf8 = new(false, throwOnInvalidBytes: true);

    public Task<int> InfoAsync(ParseResult parse, CancellationToken token) => RunAsync(parse, async client =>
    {
        var info = await client.GetInfoAsync(token);
        if (!Print(parse, info))
        {
            Fields(
                ("node id", info.NodeId),
                ("link endpoint", info.LinkEndpoint),
                ("control endpoint", info.ControlEndpoint),
                ("protocol version", Num(info.ProtocolVersion)),
                ("onion key epoch", Num(info.OnionEpoch)),
                ("onion key expires", Time(info.OnionExpiresAt)),
                ("network", $"MaxRelays {info.MaxRelays}, cells {info.CellSize} B, {info.CellConstruction}"),
                ("uptime", Span(info.Uptime)),
                ("peers", $"{info.PeersUp} up of {info.PeersKnown} known"),
                ("tunnels", $"{info.TunnelsActive} active, {info.ControlTunnels} through the control API"),
                ("listeners", Num(info.Listeners)),
                ("you are", info.CallerRole),
                ("version", info.Version));
        }

        return ExitCodes.Ok;
    }, token);

    public Task<int> StatsAsync(ParseResult parse, CancellationToken token) => RunAsync(parse, async client =>
    {
        var stats = await client.GetStatsAsync(token);
        if (!Print(parse, stats))
        {
            Fields([.. Stats.Descriptor.Fields.InFieldNumberOrder()
                .Where(f => f.FieldType != Google.Protobuf.Reflection.FieldType.Message)
                .Select(f => (f.Name.Replace('_', ' '), Convert.ToString(f.Accessor.GetValue(stats), CultureInfo.InvariantCulture) ?? ""))]);
        }

        return ExitCodes.Ok;
    }, token);

    public Task<int> PeersAsync(ParseResult parse, CancellationToken token) => RunAsync(parse, async client =>
    {
        var peers = await client.ListPeersAsync(token);
        if (!Print(parse, peers))
        {
            Table(["NODE ID", "STATUS", "ENDPOINT", "FAILURES", "LAST SEEN", "EPOCH"],
                peers.Peers.Select(p => new[] { p.NodeId, Status(p.Status), p.Endpoint, Num(p.ConsecutiveFailures), Time(p.LastSeen), Num(p.OnionEpoch) }));
            foreach (var banned in peers.Banned)
            {
                io.Out.WriteLine($"banned: {banned}");
            }
        }

        return ExitCodes.Ok;
    }, token);

    public Task<int> WatchPeersAsync(ParseResult parse, CancellationToken token) => RunAsync(parse, async client =>
    {
        var limit = parse.GetValue(o.Count);
        var seen = 0u;
        await foreach (var change in client.WatchPeersAsync(parse.GetValue(o.Current), token))
        {
            if (!Print(parse, change))
            {
                io.Out.WriteLine($"{Time(change.Time)}  {change.NodeId}  {Status(change.Status),-7}  {change.Endpoint}");
            }

            if (limit != 0 && ++seen >= limit)
            {
                break;
            }
        }

        return ExitCodes.Ok;
    }, token);

    public Task<int> AddPeerAsync(ParseResult parse, CancellationToken token) => RunAsync(parse, async client =>
    {
        var peer = await client.AddPeerAsync(parse.GetValue(o.Endpoint)!, token);
        if (!Print(parse, peer))
        {
            io.Out.WriteLine($"added {peer.NodeId} at {peer.Endpoint} ({Status(peer.Status)})");
        }

        return ExitCodes.Ok;
    }, token);

    public Task<int> RemovePeerAsync(ParseResult parse, CancellationToken token) => RunAsync(parse, async client =>
    {
        var id = parse.GetValue(o.NodeId)!;
        var result = await client.RemovePeerAsync(id, parse.GetValue(o.Ban), token);
        if (!Print(parse, result))
        {
            io.Out.WriteLine(result.Banned ? $"banned {id} until the node restarts" : $"removed {id} (gossip may bring it back; --ban to refuse it)");
        }

        return ExitCodes.Ok;
    }, token);

    public Task<int> PingAsync(ParseResult parse, CancellationToken token) => RunAsync(parse, async client =>
    {
        var request = new PingRequest
        {
            Destination = parse.GetValue(o.To) ?? "",
            Relays = parse.GetValue(o.Relays),
            Count = Math.Max(1, parse.GetValue(o.Count)),
            Bytes = parse.GetValue(o.Bytes),
            Reuse = parse.GetValue(o.Reuse),
        };
        if (parse.GetValue(o.Interval) is > 0 and var interval)
        {
            request.Interval = Duration.FromTimeSpan(TimeSpan.FromSeconds(interval));
        }

        if (parse.GetValue(o.Deadline) is > 0 and var deadline)
        {
            request.Deadline = Duration.FromTimeSpan(TimeSpan.FromSeconds(deadline));
        }

        var times = new List<double>();
        var failed = 0;
        await foreach (var attempt in client.PingAsync(request, token))
        {
            var ms = attempt.Time.ToTimeSpan().TotalMilliseconds;
            if (attempt.Ok)
            {
                times.Add(ms);
            }
            else
            {
                failed++;
            }

            if (!Print(parse, attempt))
            {
                io.Out.WriteLine(attempt.Ok
                    ? string.Create(CultureInfo.InvariantCulture, $"attempt {attempt.Attempt}: {attempt.Route.Count - 1} relays to {Short(attempt.Route[^1])}: {ms:F1} ms")
                    : string.Create(CultureInfo.InvariantCulture, $"attempt {attempt.Attempt}: failed {Hop(attempt.Error.Hop, request.Relays)}: {attempt.Error.Reason} ({attempt.Error.Message}) after {ms:F1} ms"));
            }
        }

        if (!parse.GetValue(o.Json))
        {
            times.Sort();
            io.Out.WriteLine(times.Count == 0
                ? $"{failed} attempts, all failed"
                : string.Create(CultureInfo.InvariantCulture,
                    $"{times.Count + failed} attempts, {times.Count} ok, {failed} failed; min {times[0]:F1} ms, median {times[times.Count / 2]:F1} ms, max {times[^1]:F1} ms"));
        }

        return failed == 0 ? ExitCodes.Ok : ExitCodes.Unavailable;
    }, token);

    public Task<int> TunnelsAsync(ParseResult parse, CancellationToken token) => RunAsync(parse, async client =>
    {
        var tunnels = await client.ListTunnelsAsync(token);
        if (!Print(parse, tunnels))
        {
            Table(["TUNNEL ID", "ROLE", "MODE", "DESTINATION", "RELAYS", "SENT", "RECEIVED", "AGE", "CLIENT"],
                tunnels.Tunnels.Select(t => new[]
                {
                    t.TunnelId, Role(t.Role), Mode(t.Mode), t.Destination.Length == 0 ? "-" : Short(t.Destination), Num(t.Relays),
                    Num(t.BytesSent), Num(t.BytesReceived), Span(t.Age), t.Client,
                }));
        }

        return ExitCodes.Ok;
    }, token);

    public Task<int> CloseTunnelAsync(ParseResult parse, CancellationToken token) => RunAsync(parse, async client =>
    {
        var id = parse.GetValue(o.TunnelId)!;
        await client.CloseTunnelAsync(id, token);
        if (!Print(parse, new CloseTunnelResponse()))
        {
            io.Out.WriteLine($"closed {id}");
        }

        return ExitCodes.Ok;
    }, token);

    public Task<int> EventsAsync(ParseResult parse, CancellationToken token) => RunAsync(parse, async client =>
    {
        var request = new WatchEventsRequest();
        foreach (var name in parse.GetValue(o.Types) ?? [])
        {
            request.EventTypes.Add(ParseEventType(name));
        }

        var limit = parse.GetValue(o.Count);
        var seen = 0u;
        await foreach (var e in client.WatchEventsAsync(request.EventTypes, token))
        {
            if (!Print(parse, e))
            {
                io.Out.WriteLine($"{Time(e.Time)}  {EventName(e.Type),-14} {Describe(e)}");
            }

            if (limit != 0 && ++seen >= limit)
            {
                break;
            }
        }

        return ExitCodes.Ok;
    }, token);

    public Task<int> RotateKeysAsync(ParseResult parse, CancellationToken token) => RunAsync(parse, async client =>
    {
        var rotated = await client.RotateKeysAsync(token);
        if (!Print(parse, rotated))
        {
            io.Out.WriteLine(rotated.Outcome == RotationOutcome.Deferred
                ? $"onion key rotation deferred until {Time(rotated.RotatesAt)} (Overlay:OnionKeys:MinEarlyRotationInterval since the last one); epoch {rotated.Epoch} stays current until then"
                : $"onion key rotated: epoch {rotated.PreviousEpoch} -> {rotated.Epoch}, valid until {Time(rotated.ExpiresAt)}");
        }

        return ExitCodes.Ok;
    }, token);

    private async Task<int> RunAsync(ParseResult parse, Func<OverlayClient, Task<int>> action, CancellationToken token)
    {
        using var connection = CliConnection.Open(parse.GetValue(o.Node)!, parse.GetValue(o.TokenFile), parse.GetValue(o.ClientCertificate), parse.GetValue(o.ClientKey));
        try
        {
            return await action(connection.Client);
        }
        catch (OverlayException exception)
        {
            throw CliConnection.Explain(exception);
        }
    }

    private bool Print(ParseResult parse, IMessage message)
    {
        if (!parse.GetValue(o.Json))
        {
            return false;
        }

        io.Out.WriteLine(Formatter.Format(message));
        return true;
    }

    private void Fields(params (string Name, string Value)[] fields) => Table(["FIELD", "VALUE"], fields.Select(f => new[] { f.Name, f.Value }));

    private void Table(string[] columns, IEnumerable<string[]> rows)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(io.Out),
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
        });
        console.Profile.Width = 240;
        var table = new Table { Border = TableBorder.Simple };
        foreach (var column in columns)
        {
            table.AddColumn(new TableColumn(new Text(column)) { NoWrap = true });
        }

        foreach (var row in rows)
        {
            table.AddRow(row.Select(v => (IRenderable)new Text(v)));
        }

        console.Write(table);
    }

    private static EventType ParseEventType(string name) => name.ToLowerInvariant() switch
    {
        "tunnel-opened" => EventType.TunnelOpened,
        "tunnel-closed" => EventType.TunnelClosed,
        "tunnel-failed" => EventType.TunnelFailed,
        "peer-up" => EventType.PeerUp,
        "peer-down" => EventType.PeerDown,
        "key-rotated" => EventType.KeyRotated,
        _ => throw new CliException(ExitCodes.Usage, $"--type '{name}' is not one of tunnel-opened, tunnel-closed, tunnel-failed, peer-up, peer-down, key-rotated"),
    };

    private static string EventName(EventType type) => type switch
    {
        EventType.TunnelOpened => "tunnel-opened",
        EventType.TunnelClosed => "tunnel-closed",
        EventType.TunnelFailed => "tunnel-failed",
        EventType.PeerUp => "peer-up",
        EventType.PeerDown => "peer-down",
        EventType.KeyRotated => "key-rotated",
        _ => "unknown",
    };

    private static string Describe(NodeEvent e) => e.DetailCase switch
    {
        NodeEvent.DetailOneofCase.Tunnel => $"{e.Tunnel.TunnelId} {Role(e.Tunnel.Role)} {Mode(e.Tunnel.Mode)}"
            + (e.Tunnel.Destination.Length > 0 ? $" to {Short(e.Tunnel.Destination)} via {e.Tunnel.Relays} relays" : "")
            + $", sent {e.Tunnel.BytesSent} B, received {e.Tunnel.BytesReceived} B"
            + (e.Tunnel.Error is { } error ? $", {error.Reason} at hop {error.Hop}" : ""),
        NodeEvent.DetailOneofCase.Peer => $"{e.Peer.NodeId} {Status(e.Peer.Status)} {e.Peer.Endpoint}",
        NodeEvent.DetailOneofCase.Key => $"epoch {e.Key.Epoch}, valid until {Time(e.Key.ExpiresAt)}",
        _ => "",
    };

    private static string Hop(uint hop, uint relays) => hop == 0 ? "at the origin" : hop == relays + 1 ? $"at hop {hop} (the destination)" : $"at hop {hop} (relay {hop})";

    private static string Status(PeerStatus status) => status.ToString().ToLowerInvariant();

    private static string Role(TunnelRole role) => role.ToString().ToLowerInvariant();

    private static string Mode(TunnelMode mode) => mode == TunnelMode.OneWay ? "one-way" : "duplex";

    private static string Short(string id) => id.Length > 8 ? id[..8] : id;

    private static string Num(ulong value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Num(uint value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Time(Timestamp? time) => time is null ? "-" : time.ToDateTimeOffset().ToString("u", CultureInfo.InvariantCulture);

    private static string Span(Duration? duration) => duration is null ? "-" : duration.ToTimeSpan().ToString(@"d\.hh\:mm\:ss", CultureInfo.InvariantCulture);
}
