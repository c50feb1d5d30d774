using System.Collections.Concurrent;
using System.Security.Cryptography;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Overlay.Errors;
using Overlay.Identity;
using V1 = Overlay.Protocol.Control.V1;

namespace Overlay.Host.Control;

/// <summary>One tunnel open through the control API.</summary>
internal sealed class ControlTunnel
{
    private readonly Func<long> _bytesSent;
    private readonly Func<long> _bytesReceived;
    private int _closeRequested;

    public ControlTunnel(string id, V1.TunnelRole role, V1.TunnelMode mode, NodeId? destination, int relays, ControlCaller client,
        DateTimeOffset openedAt, Func<long> bytesSent, Func<long> bytesReceived)
    {
        Id = id;
        Role = role;
        Mode = mode;
        Destination = destination;
        Relays = relays;
        Client = client;
        OpenedAt = openedAt;
        _bytesSent = bytesSent;
        _bytesReceived = bytesReceived;
    }

    public string Id { get; }

    public V1.TunnelRole Role { get; }

    public V1.TunnelMode Mode { get; }

    public NodeId? Destination { get; }

    public int Relays { get; }

    public ControlCaller Client { get; }

    public DateTimeOffset OpenedAt { get; }

    public long BytesSent => _bytesSent();

    public long BytesReceived => _bytesReceived();

    /// <summary>Cancelled by CloseTunnel.</summary>
    public CancellationTokenSource Closing { get; } = new();

    public bool CloseRequested => Volatile.Read(ref _closeRequested) != 0;

    public void Close()
    {
        Interlocked.Exchange(ref _closeRequested, 1);
        Closing.Cancel();
    }

    public V1.TunnelEvent ToEvent(TunnelException? failure = null)
    {
        var e = new V1.TunnelEvent
        {
            TunnelId = Id,
            Role = Role,
            Mode = Mode,
            Destination = Destination?.ToString() ?? "",
            Relays = (uint)Relays,
            BytesSent = (ulong)BytesSent,
            BytesReceived = (ulong)BytesReceived,
            Client = Client.Name,
        };
        if (failure is not null)
        {
            e.Error = ControlTunnels.ToFailure(failure);
        }

        return e;
    }

    public V1.TunnelInfo ToInfo(DateTimeOffset now) => new()
    {
        TunnelId = Id,
        Role = Role,
        Mode = Mode,
        Destination = Destination?.ToString() ?? "",
        Relays = (uint)Relays,
        BytesSent = (ulong)BytesSent,
        BytesReceived = (ulong)BytesReceived,
        OpenedAt = Timestamp.FromDateTimeOffset(OpenedAt),
        Age = Duration.FromTimeSpan(now - OpenedAt),
        Client = Client.Name,
    };
}

/// <summary>
/// The tunnels open through the control API, with per-client limits, totals, and the
/// opened/closed/failed events.
/// </summary>
internal sealed class ControlTunnels(ControlEvents events, TimeProvider time)
{
    private readonly ConcurrentDictionary<string, ControlTunnel> _open = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _perClient = new(StringComparer.Ordinal);
    private long _opened;
    private long _failed;
    private long _bytesSent;
    private long _bytesReceived;
    private long _pings;

    public int Count => _open.Count;

    public long OpenedTotal => Interlocked.Read(ref _opened);

    public long FailedTotal => Interlocked.Read(ref _failed);

    public long BytesSentTotal => Interlocked.Read(ref _bytesSent);

    public long BytesReceivedTotal => Interlocked.Read(ref _bytesReceived);

    public long PingsTotal => Interlocked.Read(ref _pings);

    public void CountPing() => Interlocked.Increment(ref _pings);

    public IReadOnlyCollection<ControlTunnel> Open => [.. _open.Values.OrderBy(t => t.OpenedAt)];

    public static string NewId() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));

    public static bool IsValidId(string id) => id.Length == 16 && id.All(Uri.IsHexDigit);

    public static V1.TunnelFailure ToFailure(TunnelException failure) => new()
    {
        Reason = failure.Kind.ToTag(),
        Hop = (uint)Math.Max(0, failure.Hop),
        Message = failure.Message,
    };

    /// <summary>Counts a tunnel against its client's limit; dispose the lease when it ends.</summary>
    public Lease Reserve(ControlCaller client, int limit)
    {
        var count = _perClient.AddOrUpdate(client.Name, 1, (_, n) => n + 1);
        if (count > limit)
        {
            Release(client.Name);
            throw ControlErrors.Error(StatusCode.ResourceExhausted, "too_many_tunnels",
                $"this client already has {limit} tunnels open (Overlay:Control:MaxTunnelsPerClient); close some first");
        }

        return new Lease(this, client.Name);
    }

    public ControlTunnel? Find(string id) => _open.GetValueOrDefault(id);

    public void Add(ControlTunnel tunnel)
    {
        _open[tunnel.Id] = tunnel;
        Interlocked.Increment(ref _opened);
        events.Publish(V1.EventType.TunnelOpened, tunnel.ToEvent());
    }

    /// <summary>A tunnel that failed before it opened (no entry, one failed event).</summary>
    public void FailedToOpen(string id, ControlCaller client, V1.TunnelMode mode, NodeId? destination, int relays, TunnelException failure)
    {
        Interlocked.Increment(ref _failed);
        events.Publish(V1.EventType.TunnelFailed, new V1.TunnelEvent
        {
            TunnelId = id,
            Role = V1.TunnelRole.Origin,
            Mode = mode,
            Destination = destination?.ToString() ?? "",
            Relays = (uint)relays,
            Error = ToFailure(failure),
            Client = client.Name,
        });
    }

    public void Remove(ControlTunnel tunnel, TunnelException? failure)
    {
        if (!_open.TryRemove(tunnel.Id, out _))
        {
            return;
        }

        Interlocked.Add(ref _bytesSent, tunnel.BytesSent);
        Interlocked.Add(ref _bytesReceived, tunnel.BytesReceived);
        if (failure is not null)
        {
            Interlocked.Increment(ref _failed);
        }

        events.Publish(failure is null ? V1.EventType.TunnelClosed : V1.EventType.TunnelFailed, tunnel.ToEvent(failure));
    }

    public DateTimeOffset Now => time.GetUtcNow();

    private void Release(string client) => _perClient.AddOrUpdate(client, 0, (_, n) => n - 1);

    internal sealed class Lease(ControlTunnels owner, string client) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                owner.Release(client);
            }
        }
    }
}
