using System.Text;

namespace Overlay.Reference.Spec;

/// <summary>docs/protocol.md 6.3, construction at the origin, written out step by step.</summary>
internal sealed class OnionHeaderBuilder(int slots)
{
    private const int S = Wire.SlotSize;

    /// <summary>The filler <c>phi_{n-1}</c> of the last build.</summary>
    public byte[] Filler { get; private set; } = [];

    /// <summary>
    /// Builds the header for <paramref name="route"/> (relays, destination last) with the given
    /// ephemeral private keys (one per hop, in route order) and the destination slot's padding.
    /// </summary>
    public byte[] Build(IReadOnlyList<RouteHop> route, IReadOnlyList<byte[]> ephemeral, byte[] padding, byte mode, byte deadline, string service) =>
        Build(route, ephemeral, padding, DeliverSlot(mode, deadline, service), deadline);

    /// <summary>The same with the destination's slot given byte for byte (to seal slots a hop must refuse).</summary>
    public byte[] Build(IReadOnlyList<RouteHop> route, IReadOnlyList<byte[]> ephemeral, byte[] padding, byte[] destinationSlot, byte deadline)
    {
        var n = route.Count;
        var N = slots;
        var alpha = new byte[n][];
        var rho = new byte[n][];
        var secrets = new HopSecrets[n];
        for (var i = 0; i < n; i++)
        {
            alpha[i] = X25519.PublicKey(ephemeral[i]);
            secrets[i] = HopSecrets.Derive(X25519.Agree(ephemeral[i], route[i].OnionPublicKey) ?? throw new ArgumentException("low-order onion key"));
            rho[i] = CounterMode.Keystream(secrets[i][HopSecrets.HeaderStream], 0, (N + 1) * S);
        }

        // phi_{i+1} = (phi_i || 0^S) XOR rho_i[(N-i)·S .. (N+1)·S)
        var phi = Array.Empty<byte>();
        for (var i = 0; i <= n - 2; i++)
        {
            phi = Bytes.Xor(Bytes.Concat(phi, Bytes.Zeros(S)), rho[i][((N - i) * S)..((N + 1) * S)]);
        }

        Filler = phi;
        if (padding.Length != (N - n) * S)
        {
            throw new ArgumentException($"the destination's padding is (N - n)·128 = {(N - n) * S} bytes");
        }

        // beta_{n-1} = ((slot_{n-1} || random((N-n)·S)) XOR rho_{n-1}[0 .. (N-n+1)·S)) || phi_{n-1}
        var beta = Bytes.Concat(
            Bytes.Xor(Bytes.Concat(destinationSlot, padding), rho[n - 1][..((N - n + 1) * S)]),
            phi);
        var gamma = Mac(secrets[n - 1], route[n - 1].Epoch, alpha[n - 1], beta);

        for (var i = n - 2; i >= 0; i--)
        {
            var slot = RelaySlot(deadline, route[i + 1].Epoch, route[i + 1].NodeId, alpha[i + 1], gamma);
            // beta_i = (slot_i || beta_{i+1}[0 .. (N-1)·S)) XOR rho_i[0 .. N·S)
            beta = Bytes.Xor(Bytes.Concat(slot, beta[..((N - 1) * S)]), rho[i][..(N * S)]);
            gamma = Mac(secrets[i], route[i].Epoch, alpha[i], beta);
        }

        return Bytes.Concat([Wire.Version], Bytes.UInt32(route[0].Epoch), alpha[0], beta, gamma);
    }

    // gamma_i = MAC_i(1 || epoch_i || alpha_i || beta_i)
    private static byte[] Mac(HopSecrets secrets, uint epoch, byte[] alpha, byte[] beta) =>
        Wire.HeaderMac(secrets[HopSecrets.HeaderMac], Bytes.Concat([Wire.Version], Bytes.UInt32(epoch), alpha, beta));

    /// <summary>Section 6.1, relay column: cmd 1, mode 0, deadline, flags 0, next epoch, id, alpha, gamma; the rest zero.</summary>
    public static byte[] RelaySlot(byte deadline, uint nextEpoch, byte[] nextId, byte[] nextAlpha, byte[] nextGamma)
    {
        var slot = new byte[S];
        slot[0] = Wire.Relay;
        slot[2] = deadline;
        Bytes.UInt32(nextEpoch).CopyTo(slot, 4);
        nextId.CopyTo(slot, 8);
        nextAlpha.CopyTo(slot, 40);
        nextGamma.CopyTo(slot, 72);
        return slot;
    }

    /// <summary>Section 6.1, deliver column: cmd 2, mode, deadline, flags 0, the service name zero padded; the rest zero.</summary>
    public static byte[] DeliverSlot(byte mode, byte deadline, string service)
    {
        var slot = new byte[S];
        slot[0] = Wire.Deliver;
        slot[1] = mode;
        slot[2] = deadline;
        Encoding.UTF8.GetBytes(service).CopyTo(slot, 4);
        return slot;
    }
}
