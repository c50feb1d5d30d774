using System.Security.Cryptography;

namespace Overlay.Reference.Spec;

/// <summary>
/// The cell layers of one tunnel (docs/protocol.md 7.2 to 7.4) with every party's keys in one place:
/// the origin's sealing and peeling, each relay's step, the destination's. Hops are numbered as in
/// section 1: relays 1..R, the destination R + 1; <c>hops[h - 1]</c> holds hop h's keys.
/// </summary>
internal sealed class TunnelCells(int slots, int cellSize, bool macArray, IReadOnlyList<HopSecrets> hops, byte[]? paddingKey)
{
    private const int E = Wire.EntrySize;

    private int Relays => hops.Count - 1;

    private HopSecrets Destination => hops[^1];

    private int ArrayLength => macArray ? E * slots : 0;

    /// <summary>The origin seals a forward cell of sequence <paramref name="q"/> and adds every relay's layer.</summary>
    public byte[] SealForward(ulong q, byte type, byte[] payload)
    {
        var body = InnerCell.Seal(Destination[HopSecrets.ForwardSeal], q, type, payload, cellSize - ArrayLength);
        if (!macArray)
        {
            // cell = GCM_dest(q, plaintext); for each relay i: cell ^= CTR(forward layer_i, q)
            var cell = body;
            for (var i = 0; i < Relays; i++)
            {
                cell = CounterMode.Apply(hops[i][HopSecrets.ForwardLayer], q, cell);
            }

            return cell;
        }

        var N = slots;
        var ks = new byte[Relays][];
        for (var i = 0; i < Relays; i++)
        {
            ks[i] = CounterMode.Keystream(hops[i][HopSecrets.ForwardLayer], q, cellSize);
        }

        // The destination's view: mac_dest || padding || phi.
        var rest = Bytes.Concat(MacArrayPadding(q), MacArrayFiller(q));
        var array = Bytes.Concat(Entry(Destination, q, rest, body), rest);
        for (var i = Relays - 1; i >= 0; i--)
        {
            body = Bytes.Xor(body, ks[i][(E * N)..]);
            rest = Bytes.Xor(array[..(E * (N - 1))], ks[i][..(E * (N - 1))]);
            array = Bytes.Concat(Entry(hops[i], q, rest, body), rest);
        }

        return Bytes.Concat(array, body);
    }

    /// <summary>The padding entries of the destination's view: CTR(padding key, q), 16·(N - R - 1) bytes.</summary>
    public byte[] MacArrayPadding(ulong q) => CounterMode.Keystream(paddingKey!, q, E * (slots - Relays - 1));

    /// <summary>The MAC array's filler: <c>phi_{i+1} = (phi_i || 0^16) XOR ks_i[16·(N-1-i) .. 16·N)</c> over the relays.</summary>
    public byte[] MacArrayFiller(ulong q)
    {
        var N = slots;
        var phi = Array.Empty<byte>();
        for (var i = 0; i < Relays; i++)
        {
            var ks = CounterMode.Keystream(hops[i][HopSecrets.ForwardLayer], q, E * N);
            phi = Bytes.Xor(Bytes.Concat(phi, Bytes.Zeros(E)), ks[(E * (N - 1 - i))..]);
        }

        return phi;
    }

    /// <summary>Relay <paramref name="relay"/> (1-based) peels its layer; null when its MAC-array entry does not verify.</summary>
    public byte[]? RelayForward(int relay, ulong q, byte[] cell)
    {
        var keys = hops[relay - 1];
        if (!macArray)
        {
            return CounterMode.Apply(keys[HopSecrets.ForwardLayer], q, cell);
        }

        if (!EntryVerifies(keys, q, cell))
        {
            return null;
        }

        // A' = (A[16..) || 0^16) XOR ks[0 .. 16·N), body' = body XOR ks[16·N ..)
        var shifted = Bytes.Concat(cell[E..ArrayLength], Bytes.Zeros(E), cell[ArrayLength..]);
        return CounterMode.Apply(keys[HopSecrets.ForwardLayer], q, shifted);
    }

    /// <summary>The destination checks its entry (MAC array) and opens the body; null when either fails.</summary>
    public (byte Type, byte[] Payload)? DestinationOpenForward(ulong q, byte[] cell)
    {
        if (macArray && !EntryVerifies(Destination, q, cell))
        {
            return null;
        }

        return InnerCell.Open(Destination[HopSecrets.ForwardSeal], q, cell.AsSpan(ArrayLength));
    }

    /// <summary>Hop <paramref name="hop"/> (1-based) seals a backward cell with its backward seal key; it adds no layer of its own.</summary>
    public byte[] SealBackward(int hop, ulong k, byte type, byte[] payload) =>
        InnerCell.Seal(hops[hop - 1][HopSecrets.BackwardSeal], k, type, payload, cellSize);

    /// <summary>Relay <paramref name="relay"/> (1-based) adds CTR(backward layer, k).</summary>
    public byte[] RelayBackward(int relay, ulong k, byte[] cell) => CounterMode.Apply(hops[relay - 1][HopSecrets.BackwardLayer], k, cell);

    /// <summary>Section 7.4: remove all layers, try the destination's key, then put layers back one at a time from the last relay's.</summary>
    public BackwardReading OriginOpenBackward(ulong k, byte[] cell)
    {
        for (var relay = 1; relay <= Relays; relay++)
        {
            cell = RelayBackward(relay, k, cell);
        }

        var destination = Relays + 1;
        if (InnerCell.Open(Destination[HopSecrets.BackwardSeal], k, cell) is { } opened)
        {
            if (opened.Type != Wire.Error)
            {
                return new BackwardReading(opened.Type, opened.Payload, destination);
            }

            // The destination has no next hop to report.
            return opened.Payload is [var code, 0]
                ? new BackwardReading(Wire.Error, opened.Payload, destination, destination, code)
                : new BackwardReading(Wire.Error, opened.Payload, destination, Violation: Wire.ProtocolViolation);
        }

        for (var relay = Relays; relay >= 1; relay--)
        {
            cell = RelayBackward(relay, k, cell);
            if (InnerCell.Open(hops[relay - 1][HopSecrets.BackwardSeal], k, cell) is { } report)
            {
                // A relay can only report an error; the scope byte is its own word.
                return report is (Wire.Error, [var code, var scope and (0 or 1)])
                    ? new BackwardReading(Wire.Error, report.Payload, relay, relay + scope, code)
                    : new BackwardReading(report.Type, report.Payload, relay, Violation: Wire.ProtocolViolation);
            }
        }

        return new BackwardReading(0, [], 0, Violation: Wire.Tampered);
    }

    // mac = HMAC-SHA256(forward mac key, q || A[16 .. 16·N) || body)[0..16)
    private static byte[] Entry(HopSecrets keys, ulong q, byte[] restOfArray, byte[] body) =>
        HMACSHA256.HashData(keys[HopSecrets.ForwardMac], Bytes.Concat(Bytes.UInt64(q), restOfArray, body))[..E];

    private bool EntryVerifies(HopSecrets keys, ulong q, byte[] cell) =>
        CryptographicOperations.FixedTimeEquals(Entry(keys, q, cell[E..ArrayLength], cell[ArrayLength..]), cell.AsSpan(0, E));
}
