using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
using Overlay.Crypto;
using Overlay.Protocol;

namespace Overlay.Onion;

/// <summary>
/// Builds the onion header at the origin: one fresh X25519 ephemeral key per hop (no blinding;
/// docs/protocol.md says why), Sphinx-style routing block with filler so every hop sees a
/// header of the same size and cannot tell its position.
/// </summary>
public sealed class OnionHeaderBuilder
{
    private readonly HeaderLayout _layout;
    private readonly IOnionRandom _random;

    /// <summary>Creates a builder for a network.</summary>
    public OnionHeaderBuilder(NetworkParameters parameters, IOnionRandom? random = null)
    {
        Parameters = parameters.EnsureValid();
        _layout = new HeaderLayout(parameters);
        _random = random ?? SystemOnionRandom.Instance;
    }

    /// <summary>The network this builder serves.</summary>
    public NetworkParameters Parameters { get; }

    /// <summary>The random source of ephemeral keys and padding (a CSPRNG unless a test supplies its own).</summary>
    internal IOnionRandom Random => _random;

    /// <summary>The size of every header.</summary>
    public int HeaderSize => _layout.Size;

    /// <summary>
    /// Writes the header for <paramref name="route"/> (the relays in order, then the destination)
    /// into <paramref name="header"/> and returns the per-hop keys the origin keeps.
    /// </summary>
    /// <param name="route">Relays in order, destination last; 1 to MaxRelays + 1 hops.</param>
    /// <param name="mode">What the destination does with the tunnel.</param>
    /// <param name="deadline">The coarse deadline every hop enforces.</param>
    /// <param name="header">Exactly <see cref="HeaderSize"/> bytes.</param>
    /// <param name="sealedTraceContexts">Empty, or 32 bytes per hop sealed into each hop's slot (all zero: none for that hop).</param>
    /// <param name="service">The service to reach at the destination (1..32 bytes of UTF-8); null for its default service.</param>
    /// <param name="replyId">For <see cref="TunnelMode.ReplyBlock"/> only: the 16-byte id under which the destination (the block's maker) keeps its keys.</param>
    /// <param name="replyBlockAttached">For <see cref="TunnelMode.OneWay"/> on Baseline networks only: the message starts with a reply block for the destination (docs/protocol.md §7.8).</param>
    public OriginTunnelKeys Build(
        IReadOnlyList<RouteHop> route,
        TunnelMode mode,
        DeadlineClass deadline,
        Span<byte> header,
        ReadOnlySpan<byte> sealedTraceContexts = default,
        string? service = null,
        ReadOnlySpan<byte> replyId = default,
        bool replyBlockAttached = false)
    {
        var n = route.Count;
        var slots = _layout.SlotCount;
        const int S = HeaderLayout.SlotSize;
        if (n < 1 || n > slots)
        {
            throw new ArgumentException($"a route has 1 to {slots} hops, not {n}", nameof(route));
        }

        if (header.Length != _layout.Size)
        {
            throw new ArgumentException($"the header is {_layout.Size} bytes", nameof(header));
        }

        if (!sealedTraceContexts.IsEmpty && sealedTraceContexts.Length != n * HeaderLayout.SlotTraceSize)
        {
            throw new ArgumentException("one 32-byte trace context per hop", nameof(sealedTraceContexts));
        }

        if (mode is not (TunnelMode.Duplex or TunnelMode.OneWay or TunnelMode.ReplyBlock) || !DeadlineClasses.IsDefined(deadline))
        {
            throw new ArgumentException($"mode {mode} with deadline {deadline} cannot be built");
        }

        if (mode == TunnelMode.ReplyBlock
            ? replyId.Length != HeaderLayout.SlotReplyIdSize || replyId.IndexOfAnyExcept((byte)0) < 0 || service is not null || Parameters.Construction != CellConstruction.Baseline
            : !replyId.IsEmpty)
        {
            throw new ArgumentException("a reply-block header needs a non-zero 16-byte reply id, no service and the Baseline construction; other modes take no reply id", nameof(replyId));
        }

        if (replyBlockAttached && (mode != TunnelMode.OneWay || Parameters.Construction != CellConstruction.Baseline))
        {
            throw new ArgumentException("a reply block travels only in a one-way message on a Baseline network", nameof(replyBlockAttached));
        }

        if (deadline > Parameters.MaxDeadlineClass)
        {
            throw new ArgumentException($"the network allows deadlines up to {Parameters.MaxDeadlineClass.ToTimeSpan()}, not {deadline.ToTimeSpan()}", nameof(deadline));
        }

        Span<byte> serviceField = stackalloc byte[HeaderLayout.SlotServiceSize];
        WriteService(service, serviceField);

        var keys = new HopKeys[n];
        var alphas = new byte[n * HeaderLayout.KeySize];
        var streamLength = (slots + 1) * S;
        var streams = ArrayPool<byte>.Shared.Rent(n * streamLength);
        var work = ArrayPool<byte>.Shared.Rent(2 * _layout.Size);
        var created = 0;
        try
        {
            for (; created < n; created++)
            {
                keys[created] = Agree(route[created], alphas.AsSpan(created * HeaderLayout.KeySize, HeaderLayout.KeySize));
                using var rho = new AesCtr(keys[created].HeaderStream);
                rho.Keystream(0, streams.AsSpan(created * streamLength, streamLength));
            }

            Span<byte> Rho(int hop) => streams.AsSpan(hop * streamLength, streamLength);

            // Filler: the tail that hops 0..n-2 append while shifting, so the last hop's MAC covers it.
            var filler = work.AsSpan(_layout.Size, (n - 1) * S);
            filler.Clear();
            for (var i = 0; i < n - 1; i++)
            {
                var length = (i + 1) * S;
                ByteOps.Xor(filler[..length], Rho(i)[((slots - i) * S)..]);
            }

            // The destination's routing block: its slot, random padding (so it cannot count the
            // hops before it), encrypted with its stream; then the filler.
            var beta = work.AsSpan(HeaderLayout.RoutingOffset, _layout.RoutingSize);
            var plainLength = (slots - n + 1) * S;
            var last = n - 1;
            WriteSlot(beta[..S], HeaderLayout.CommandDeliver, (byte)mode, deadline, TraceFor(sealedTraceContexts, last));
            serviceField.CopyTo(beta[HeaderLayout.SlotService..]);
            replyId.CopyTo(beta[HeaderLayout.SlotReplyId..]);
            if (replyBlockAttached)
            {
                beta[HeaderLayout.SlotFlags] |= HeaderLayout.FlagReplyBlockAttached;
            }

            _random.Fill(beta[S..plainLength]);
            ByteOps.Xor(beta[..plainLength], Rho(last));
            filler.CopyTo(beta[plainLength..]);

            Span<byte> gamma = stackalloc byte[HeaderLayout.MacSize];
            Seal(work, route[last].Epoch, alphas.AsSpan(last * HeaderLayout.KeySize, HeaderLayout.KeySize), keys[last], gamma);

            Span<byte> slot = stackalloc byte[S];
            for (var i = n - 2; i >= 0; i--)
            {
                var next = route[i + 1];
                WriteSlot(slot, HeaderLayout.CommandRelay, 0, deadline, TraceFor(sealedTraceContexts, i));
                BinaryPrimitives.WriteUInt32BigEndian(slot[HeaderLayout.SlotNextEpoch..], next.Epoch);
                next.Id.CopyTo(slot[HeaderLayout.SlotNextId..]);
                alphas.AsSpan((i + 1) * HeaderLayout.KeySize, HeaderLayout.KeySize).CopyTo(slot[HeaderLayout.SlotNextAlpha..]);
                gamma.CopyTo(slot[HeaderLayout.SlotNextGamma..]);

                // beta_i = (slot_i || beta_{i+1} without its last slot) XOR rho_i
                beta[..((slots - 1) * S)].CopyTo(beta[S..]);
                slot.CopyTo(beta);
                ByteOps.Xor(beta, Rho(i));
                Seal(work, route[i].Epoch, alphas.AsSpan(i * HeaderLayout.KeySize, HeaderLayout.KeySize), keys[i], gamma);
            }

            work.AsSpan(0, _layout.Size).CopyTo(header);
            return new OriginTunnelKeys(keys);
        }
        catch
        {
            for (var i = 0; i < created; i++)
            {
                keys[i].Dispose();
            }

            throw;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(streams.AsSpan(0, n * streamLength));
            ArrayPool<byte>.Shared.Return(streams);
            ArrayPool<byte>.Shared.Return(work, clearArray: true);
        }

        static ReadOnlySpan<byte> TraceFor(ReadOnlySpan<byte> contexts, int hop) =>
            contexts.IsEmpty ? default : contexts.Slice(hop * HeaderLayout.SlotTraceSize, HeaderLayout.SlotTraceSize);
    }

    // Writes version, epoch, alpha in front of the routing block already in `work`, then its MAC.
    private void Seal(byte[] work, uint epoch, ReadOnlySpan<byte> alpha, HopKeys keys, Span<byte> gamma)
    {
        var header = work.AsSpan(0, _layout.Size);
        header[HeaderLayout.VersionOffset] = HeaderLayout.Version;
        BinaryPrimitives.WriteUInt32BigEndian(header[HeaderLayout.EpochOffset..], epoch);
        alpha.CopyTo(header[HeaderLayout.AlphaOffset..]);
        HeaderLayout.ComputeMac(keys.HeaderMac, header[.._layout.GammaOffset], gamma);
        gamma.CopyTo(header[_layout.GammaOffset..]);
    }

    private static void WriteService(string? service, Span<byte> field)
    {
        field.Clear();
        if (service is null)
        {
            return;
        }

        if (service.Length == 0 || service.Contains('\0') || System.Text.Encoding.UTF8.GetByteCount(service) > field.Length)
        {
            throw new ArgumentException($"a service name is 1 to {field.Length} bytes of UTF-8 without NUL", nameof(service));
        }

        System.Text.Encoding.UTF8.GetBytes(service, field);
    }

    private static void WriteSlot(Span<byte> slot, byte command, byte mode, DeadlineClass deadline, ReadOnlySpan<byte> trace)
    {
        slot.Clear();
        slot[HeaderLayout.SlotCommand] = command;
        slot[HeaderLayout.SlotMode] = mode;
        slot[HeaderLayout.SlotDeadline] = (byte)deadline;
        // A hop that gets no sealed context (all zero) sees flag 0 and a zero field.
        if (!trace.IsEmpty && trace.IndexOfAnyExcept((byte)0) >= 0)
        {
            slot[HeaderLayout.SlotFlags] = HeaderLayout.FlagSealedTrace;
            trace.CopyTo(slot[HeaderLayout.SlotTrace..]);
        }
    }

    private HopKeys Agree(RouteHop hop, Span<byte> alpha)
    {
        var onionKey = hop.OnionPublicKey.Span;
        if (onionKey.Length != HeaderLayout.KeySize || (onionKey[31] & 0x80) != 0)
        {
            throw new ArgumentException($"hop {hop.Id.ToShortString()} has a malformed onion key", nameof(hop));
        }

        Span<byte> ephemeral = stackalloc byte[HeaderLayout.KeySize];
        Span<byte> shared = stackalloc byte[HeaderLayout.KeySize];
        try
        {
            _random.Fill(ephemeral);
            Sodium.ScalarMultBase(alpha, ephemeral);
            if (!Sodium.ScalarMult(shared, ephemeral, onionKey))
            {
                throw new ArgumentException($"hop {hop.Id.ToShortString()} has a low-order onion key", nameof(hop));
            }

            return HopKeys.Derive(shared);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(ephemeral);
            CryptographicOperations.ZeroMemory(shared);
        }
    }
}

/// <summary>The per-hop keys the origin keeps for one tunnel; zeroed on dispose.</summary>
public sealed class OriginTunnelKeys : IDisposable
{
    internal OriginTunnelKeys(HopKeys[] hops) => Hops = hops;

    /// <summary>Number of hops (relays + the destination).</summary>
    public int HopCount => Hops.Length;

    /// <summary>Number of relays.</summary>
    public int RelayCount => Hops.Length - 1;

    /// <summary>The private trace coordinates of hop <paramref name="index"/> (0-based: relays in order, then the destination).</summary>
    public HopTraceContext TraceContext(int index) => Hops[index].TraceContext;

    internal HopKeys[] Hops { get; }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var hop in Hops)
        {
            hop.Dispose();
        }
    }
}
