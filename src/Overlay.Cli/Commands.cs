using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Overlay.Protocol.Control.V1;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Overlay.Cli;

/// <summary>The commands' actions.</summary>
internal sealed class Commands(GlobalOptions o, CliIO io)
{
    private static readonly JsonFormatter Formatter = new(JsonFormatter.Settings.Default.WithFormatDefaultValues(true));
    private static readonly UTF8Encoding StrictUtf8 = new(false, throwOnInvalidBytes: true);

    public Task<int> InfoAsync(ParseResult parse, CancellationToken token) => RunAsync(parse, async api =>
    {
        var info = await api.GetInfoAsync(new GetInfoRequest(), cancellationToken: token);
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

    public Task<int> StatsAsync(ParseResult parse, CancellationToken token) => RunAsync(parse, async api =>
    {
        var stats = await api.GetStatsAsync(new GetStatsRequest(), cancellationToken: token);
        if (!Print(parse, stats))
        {
            Fields([.. Stats.Descriptor.Fields.InFieldNumberOrder()
                .Where(f => f.FieldType != Google.Protobuf.Reflection.FieldType.Message)
                .Select(f => (f.Name.Replace('_', ' '), Convert.ToString(f.Accessor.GetValue(stats), CultureInfo.InvariantCulture) ?? ""))]);
        }

        return ExitCodes.Ok;
    }, token);

    public Task<int> PeersAsync(ParseResult parse, CancellationToken token) => RunAsync(parse, async api =>
    {
        var peers = await api.ListPeersAsync(new ListPeersRequest(), cancellationToken: token);
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

    public Task<int> WatchPeersAsync(ParseResult parse, CancellationToken token) => RunAsync(parse, async api =>
    {
        var limit = parse.GetValue(o.Count);
        using var call = api.WatchPeers(new WatchPeersRequest { IncludeCurrent = parse.GetValue(o.Current) }, cancellationToken: token);
        var seen = 0u;
        while ((limit == 0 || seen < limit) && await call.ResponseStream.MoveNext(token))
        {
            var change = call.ResponseStream.Current;
            if (!Print(parse, change))
            {
                io.Out.WriteLine($"{Time(change.Time)}  {change.NodeId}  {Status(change.Status),-7}  {change.Endpoint}");
            }

            seen++;
        }

        return ExitCodes.Ok;
    }, token);

    public Task<int> AddPeerAsync(ParseResult parse, CancellationToken token) => RunAsync(parse, async api =>
    {
        var peer = await api.AddPeerAsync(new AddPeerRequest { Endpoint = parse.GetValue(o.Endpoint) }, cancellationToken: token);
        if (!Print(parse, peer))
        {
            io.Out.WriteLine($"added {peer.NodeId} at {peer.Endpoint} ({Status(peer.Status)})");
        }

        return ExitCodes.Ok;
    }, token);

    public Task<int> RemovePeerAsync(ParseResult parse, CancellationToken token) => RunAsync(parse, async api =>
    {
        var id = parse.GetValue(o.NodeId)!;
        var result = await api.RemovePeerAsync(new RemovePeerRequest { NodeId = id, Ban = parse.GetValue(o.Ban) }, cancellationToken: token);
        if (!Print(parse, result))
        {
            io.Out.WriteLine(result.Banned ? $"banned {id} until the node restarts" : $"removed {id} (gossip may bring it back; --ban to refuse it)");
        }

        return ExitCodes.Ok;
    }, token);

    public Task<int> PingAsync(ParseResult parse, CancellationToken token) => RunAsync(parse, async api =>
    {
        var request = new PingRequest
        {
            Destination = parse.GetValue(o.To) ?? "",
            Relays = parse.GetValue(o.Relays),
            Count = Math.Max(1, parse.GetValue(o.Count)),
            Bytes = parse.GetValue(o.Bytes),
        };
        if (parse.GetValue(o.Interval) is > 0 and var interval)
        {
            request.Interval = Duration.FromTimeSpan(TimeSpan.FromSeconds(interval));
        }

        if (parse.GetValue(o.Deadline) is > 0 and var deadline)
        {
            request.Deadline = Duration.FromTimeSpan(TimeSpan.FromSeconds(deadline));
        }

        using var call = api.Ping(request, cancellationToken: token);
        var times = new List<double>();
        var failed = 0;
        await foreach (var attempt in call.ResponseStream.ReadAllAsync(token))
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

    public Task<int> SendAsync(ParseResult parse, CancellationToken token) => RunAsync(parse, async api =>
    {
        var target = new TunnelTarget { Destination = parse.GetValue(o.To) ?? "", Relays = parse.GetValue(o.Relays) };
        if (parse.GetValue(o.Deadline) is > 0 and var deadline)
        {
            target.Deadline = Duration.FromTimeSpan(TimeSpan.FromSeconds(deadline));
        }

        using var progress = Progress.Start(io, parse.GetValue(o.Json));
        var buffer = new byte[64 * 1024];
        if (parse.GetValue(o.OneWay))
        {
            using var send = api.Send(cancellationToken: token);
            await send.RequestStream.WriteAsync(new SendRequest { Target = target }, token);
            int read;
            while ((read = await io.Input.ReadAsync(buffer, token)) > 0)
            {
                await send.RequestStream.WriteAsync(new SendRequest { Data = ByteString.CopyFrom(buffer, 0, read) }, token);
                progress.Sent(read);
            }

            await send.RequestStream.CompleteAsync();
            var result = await send;
            if (!Print(parse, result))
            {
                io.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"sent {result.BytesSent} bytes one way through {result.Route.Count - 1} relays to {Short(result.Route[^1])} in {result.Elapsed.ToTimeSpan().TotalMilliseconds:F1} ms"));
            }

            return ExitCodes.Ok;
        }

        using var call = api.OpenTunnel(cancellationToken: token);
        await call.RequestStream.WriteAsync(new OpenTunnelRequest { Open = target }, token);
        if (!await call.ResponseStream.MoveNext(token))
        {
            throw new CliException(ExitCodes.Failed, "the node ended the tunnel without opening it");
        }

        var opened = call.ResponseStream.Current.Opened;
        var writer = Task.Run(async () =>
        {
            int read;
            while ((read = await io.Input.ReadAsync(buffer, token)) > 0)
            {
                await call.RequestStream.WriteAsync(new OpenTunnelRequest { Data = ByteString.CopyFrom(buffer, 0, read) }, token);
                progress.Sent(read);
            }

            await call.RequestStream.WriteAsync(new OpenTunnelRequest { End = true }, token);
            await call.RequestStream.CompleteAsync();
        }, token);

        using var reply = parse.GetValue(o.Json) ? new MemoryStream() : null;
        var received = 0L;
        while (await call.ResponseStream.MoveNext(token))
        {
            var message = call.ResponseStream.Current;
            if (reply is not null)
            {
                message.Data.WriteTo(reply);
            }
            else
            {
                message.Data.WriteTo(io.Output);
            }

            received += message.Data.Length;
            progress.Received(message.Data.Length);
            if (message.End)
            {
                break;
            }
        }

        await writer;
        await io.Output.FlushAsync(token);
        if (reply is not null)
        {
            io.Out.WriteLine(Formatter.Format(new Struct
            {
                Fields =
                {
                    ["tunnelId"] = Value.ForString(opened.TunnelId),
                    ["route"] = Value.ForList([.. opened.Route.Select(Value.ForString)]),
                    ["bytesReceived"] = Value.ForNumber(received),
                    ["reply"] = Value.ForString(Convert.ToBase64String(reply.GetBuffer(), 0, (int)reply.Length)),
                },
            }));
        }

        return ExitCodes.Ok;
    }, token);

    public Task<int> ListenAsync(ParseResult parse, CancellationToken token) => RunAsync(parse, async api =>
    {
        var limit = parse.GetValue(o.Count);
        var command = parse.GetValue(o.Exec);
        var json = parse.GetValue(o.Json);
        using var listen = api.Listen(new ListenRequest(), cancellationToken: token);
        await listen.ResponseHeadersAsync;
        await io.Error.WriteLineAsync($"listening on {parse.GetValue(o.Node)} for tunnels ending at this node{(limit > 0 ? $" ({limit})" : "")}; replying with {(command is null ? "an echo" : $"the output of `{command}`")}");
        var handled = 0u;
        while ((limit == 0 || handled < limit) && await listen.ResponseStream.MoveNext(token))
        {
            var offer = listen.ResponseStream.Current.Offer;
            using var accept = api.Accept(cancellationToken: token);
            await accept.RequestStream.WriteAsync(new AcceptRequest { TunnelId = offer.TunnelId }, token);
            using var request = new MemoryStream();
            while (await accept.ResponseStream.MoveNext(token))
            {
                accept.ResponseStream.Current.Data.WriteTo(request);
                if (accept.ResponseStream.Current.End)
                {
                    break;
                }
            }

            var data = request.ToArray();
            PrintMessage(offer, data, json);
            if (offer.Mode == TunnelMode.Duplex)
            {
                var answer = command is null ? data : await RunCommandAsync(command, data, token);
                for (var offset = 0; offset < answer.Length; offset += 256 * 1024)
                {
                    await accept.RequestStream.WriteAsync(new AcceptRequest { Data = ByteString.CopyFrom(answer, offset, Math.Min(256 * 1024, answer.Length - offset)) }, token);
                }

                await accept.RequestStream.WriteAsync(new AcceptRequest { End = true }, token);
            }

            await accept.RequestStream.CompleteAsync();
            while (await accept.ResponseStream.MoveNext(token))
            {
            }

            handled++;
        }

        return ExitCodes.Ok;
    }, token);

    public Task<int> TunnelsAsync(ParseResult parse, CancellationToken token) => RunAsync(parse, async api =>
    {
        var tunnels = await api.ListTunnelsAsync(new ListTunnelsRequest(), cancellationToken: token);
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

    public Task<int> CloseTunnelAsync(ParseResult parse, CancellationToken token) => RunAsync(parse, async api =>
    {
        var id = parse.GetValue(o.TunnelId)!;
        await api.CloseTunnelAsync(new CloseTunnelRequest { TunnelId = id }, cancellationToken: token);
        if (!Print(parse, new CloseTunnelResponse()))
        {
            io.Out.WriteLine($"closed {id}");
        }

        return ExitCodes.Ok;
    }, token);

    public Task<int> EventsAsync(ParseResult parse, CancellationToken token) => RunAsync(parse, async api =>
    {
        var request = new WatchEventsRequest();
        foreach (var name in parse.GetValue(o.Types) ?? [])
        {
            request.EventTypes.Add(ParseEventType(name));
        }

        var limit = parse.GetValue(o.Count);
        using var call = api.WatchEvents(request, cancellationToken: token);
        var seen = 0u;
        while ((limit == 0 || seen < limit) && await call.ResponseStream.MoveNext(token))
        {
            var e = call.ResponseStream.Current;
            if (!Print(parse, e))
            {
                io.Out.WriteLine($"{Time(e.Time)}  {EventName(e.Type),-14} {Describe(e)}");
            }

            seen++;
        }

        return ExitCodes.Ok;
    }, token);

    public Task<int> RotateKeysAsync(ParseResult parse, CancellationToken token) => RunAsync(parse, async api =>
    {
        var rotated = await api.RotateKeysAsync(new RotateKeysRequest(), cancellationToken: token);
        if (!Print(parse, rotated))
        {
            io.Out.WriteLine(rotated.Outcome == RotationOutcome.Deferred
                ? $"onion key rotation deferred until {Time(rotated.RotatesAt)} (Overlay:OnionKeys:MinEarlyRotationInterval since the last one); epoch {rotated.Epoch} stays current until then"
                : $"onion key rotated: epoch {rotated.PreviousEpoch} -> {rotated.Epoch}, valid until {Time(rotated.ExpiresAt)}");
        }

        return ExitCodes.Ok;
    }, token);

    private async Task<int> RunAsync(ParseResult parse, Func<Control.ControlClient, Task<int>> action, CancellationToken token)
    {
        using var connection = ControlConnection.Open(parse.GetValue(o.Node)!, parse.GetValue(o.TokenFile), parse.GetValue(o.ClientCertificate), parse.GetValue(o.ClientKey));
        try
        {
            return await action(connection.Api);
        }
        catch (RpcException exception) when (!(exception.StatusCode == StatusCode.Cancelled && token.IsCancellationRequested))
        {
            throw connection.Explain(exception);
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

    private void PrintMessage(IncomingTunnelOffer offer, byte[] data, bool json)
    {
        string? text;
        try
        {
            text = StrictUtf8.GetString(data);
            text = text.Any(c => char.IsControl(c) && c is not ('\n' or '\r' or '\t')) ? null : text;
        }
        catch (DecoderFallbackException)
        {
            text = null;
        }

        if (json)
        {
            var fields = new Struct
            {
                Fields =
                {
                    ["tunnelId"] = Value.ForString(offer.TunnelId),
                    ["mode"] = Value.ForString(Mode(offer.Mode)),
                    ["bytes"] = Value.ForNumber(data.Length),
                    ["data"] = Value.ForString(Convert.ToBase64String(data)),
                },
            };
            if (text is not null)
            {
                fields.Fields["text"] = Value.ForString(text);
            }

            io.Out.WriteLine(Formatter.Format(fields));
            return;
        }

        io.Out.WriteLine($"tunnel {offer.TunnelId} ({Mode(offer.Mode)}), {data.Length} bytes:");
        io.Out.WriteLine(text ?? $"(binary: {Convert.ToHexStringLower(data.AsSpan(0, Math.Min(32, data.Length)))}{(data.Length > 32 ? "..." : "")})");
    }

    private async Task<byte[]> RunCommandAsync(string command, byte[] input, CancellationToken token)
    {
        var start = OperatingSystem.IsWindows()
            ? new ProcessStartInfo("cmd.exe", ["/c", command])
            : new ProcessStartInfo("/bin/sh", ["-c", command]);
        start.RedirectStandardInput = true;
        start.RedirectStandardOutput = true;
        start.UseShellExecute = false;
        using var process = Process.Start(start) ?? throw new CliException(ExitCodes.Failed, $"cannot start `{command}`");
        var output = new MemoryStream();
        var reading = process.StandardOutput.BaseStream.CopyToAsync(output, token);
        try
        {
            await process.StandardInput.BaseStream.WriteAsync(input, token);
        }
        catch (IOException exception)
        {
            // It closed its input early (a broken pipe); what it wrote is still the reply.
            await io.Error.WriteLineAsync($"overlay: `{command}` did not read all {input.Length} bytes of its input: {exception.Message}");
        }

        process.StandardInput.Close();
        await reading;
        await process.WaitForExitAsync(token);
        if (process.ExitCode != 0)
        {
            await io.Error.WriteLineAsync($"overlay: `{command}` exited with {process.ExitCode}; its output is the reply anyway");
        }

        return output.ToArray();
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

/// <summary>A progress display on standard error for long transfers, only when it is a terminal.</summary>
internal sealed class Progress : IDisposable
{
    private const long ShowAfterBytes = 4 * 1024 * 1024;
    private readonly CliIO? _io;
    private readonly Lock _lock = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly CancellationTokenSource _stop = new();
    private Task? _display;
    private long _sent;
    private long _received;

    private Progress(CliIO? io) => _io = io;

    public static Progress Start(CliIO io, bool json) => new(json || !io.Interactive ? null : io);

    public void Sent(int bytes) => Update(ref _sent, bytes);

    public void Received(int bytes) => Update(ref _received, bytes);

    private void Update(ref long counter, int bytes)
    {
        if (_io is null)
        {
            return;
        }

        if (Interlocked.Add(ref counter, bytes) >= ShowAfterBytes && _display is null)
        {
            lock (_lock)
            {
                _display ??= Task.Run(ShowAsync);
            }
        }
    }

    private async Task ShowAsync()
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(_io!.Error) });
        await console.Progress()
            .Columns(new TaskDescriptionColumn(), new SpinnerColumn(), new ElapsedTimeColumn())
            .StartAsync(async context =>
            {
                var task = context.AddTask("transfer").IsIndeterminate();
                while (!_stop.IsCancellationRequested)
                {
                    var seconds = Math.Max(0.001, _clock.Elapsed.TotalSeconds);
                    var sent = Interlocked.Read(ref _sent);
                    var received = Interlocked.Read(ref _received);
                    task.Description = string.Create(CultureInfo.InvariantCulture,
                        $"sent {sent / 1048576.0:F1} MiB, received {received / 1048576.0:F1} MiB ({(sent + received) / 1048576.0 / seconds:F1} MiB/s)");
                    try
                    {
                        await Task.Delay(200, _stop.Token);
                    }
                    catch (OperationCanceledException)
                    {
                        break;
                    }
                }

                task.StopTask();
            });
    }

    public void Dispose()
    {
        _stop.Cancel();
        _display?.GetAwaiter().GetResult();
        _stop.Dispose();
    }
}
