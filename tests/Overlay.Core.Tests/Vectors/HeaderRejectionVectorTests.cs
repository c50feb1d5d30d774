using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Overlay.Crypto;
using Overlay.Errors;
using Overlay.Identity;
using Overlay.Onion;
using Overlay.Protocol;
using Overlay.Tests.Support;
using static Overlay.Tests.Vectors.VectorFile;

namespace Overlay.Tests.Vectors;

/// <summary>
/// What a hop does with headers whose slot or outer fields break a rule of docs/protocol.md 6.2, and
/// with a few that only just keep them: each header is sealed to one hop (the slot under its stream,
/// a valid MAC) so the slot checks are reached, and the expected outcome is the processor's own.
/// Written with OVERLAY_WRITE_VECTORS=1, checked byte for byte otherwise, and by tests/Overlay.Reference.Tests.
/// </summary>
public sealed class HeaderRejectionVectorTests
{
    private const string File = "v1-header-rejections.json";
    private const string RandomLabel = "overlay/v1 test vectors: header rejections";
    private const int SlotSize = 128;
    private static readonly NetworkParameters Network = new() { MaxRelays = 1, CellSize = 512, MaxDeadlineClass = DeadlineClass.Hour1 };

    [Fact]
    public void Header_outcomes_match_the_published_vectors()
    {
        var now = DateTimeOffset.UnixEpoch;
        var onionPrivate = SHA256.HashData("overlay/v1 test vector onion key 0"u8);
        using var ring = new OnionKeyRing();
        using var random = new DeterministicRandom(RandomLabel);
        var key = OnionKey.Import(onionPrivate, epoch: 7, now, now.AddYears(100));
        ring.Add(new OnionKeyEpoch(key, new ReplayCache(64)));

        var cases = new JsonArray();
        byte[]? valid = null;
        foreach (var (name, slot) in SlotCases())
        {
            var ephemeral = new byte[32];
            var padding = new byte[Network.MaxRelays * SlotSize];
            random.Fill(ephemeral);
            random.Fill(padding);
            var header = Seal(key, ephemeral, slot, padding);
            valid ??= header;
            var json = new JsonObject { ["name"] = name, ["ephemeralPrivateKey"] = Hex(ephemeral), ["slot"] = Hex(slot), ["padding"] = Hex(padding) };
            cases.Add(Outcome(ring, json, header));
        }

        foreach (var (name, change) in OuterCases())
        {
            cases.Add(Outcome(ring, new JsonObject { ["name"] = name }, change(valid!.ToArray())));
        }

        VectorFile.MatchOrWrite(File, new JsonObject
        {
            ["network"] = new JsonObject { ["maxRelays"] = Network.MaxRelays, ["cellSize"] = Network.CellSize, ["maxDeadlineClass"] = (int)Network.MaxDeadlineClass },
            ["onionPrivateKey"] = Hex(onionPrivate),
            ["epoch"] = 7,
            ["random"] = $"AES-256-CTR keystream, key = SHA-256(\"{RandomLabel}\"), sequence 0, consumed in order: per slot case, 32 bytes of ephemeral key then the padding",
            ["construction"] = "header = 1 || epoch || alpha || beta || gamma with beta = (slot || padding) XOR AES-CTR(header stream key, q = 0)[0 .. 128·N), as docs/protocol.md 6.3 for a route of one hop; the other cases change a byte of the first case's header",
            ["cases"] = cases,
        });
    }

    // Each case goes to a processor with a fresh replay cache entry: every header here has its own ephemeral key.
    private static JsonObject Outcome(OnionKeyRing ring, JsonObject json, byte[] header)
    {
        var next = new byte[OnionHeader.SizeFor(Network)];
        using var result = new OnionHeaderProcessor(Network, ring).Process(header, next);
        json["header"] = Hex(header);
        json["outcome"] = result.Outcome.ToString().ToLowerInvariant();
        switch (result.Outcome)
        {
            case HeaderOutcome.Rejected:
                json["error"] = (int)result.Rejection;
                json["errorName"] = result.Rejection.ToString();
                break;
            case HeaderOutcome.Deliver:
                json["mode"] = (int)result.Mode;
                json["service"] = result.Service ?? "";
                if (!result.ReplyId.IsEmpty)
                {
                    json["replyId"] = Hex(result.ReplyId.ToArray());
                }

                break;
            case HeaderOutcome.Relay:
                json["nextHeader"] = Hex(next);
                break;
        }

        return json;
    }

    private static byte[] Seal(OnionKey key, byte[] ephemeral, byte[] slot, byte[] padding)
    {
        var alpha = new byte[32];
        var shared = new byte[32];
        Sodium.ScalarMultBase(alpha, ephemeral);
        Assert.True(Sodium.ScalarMult(shared, ephemeral, key.PublicKey));
        using var keys = HopKeys.Derive(shared);
        var beta = new byte[(Network.MaxRelays + 1) * SlotSize];
        slot.CopyTo(beta, 0);
        padding.CopyTo(beta, SlotSize);
        using (var rho = new AesCtr(keys.HeaderStream))
        {
            rho.Xor(0, beta);
        }

        var header = new byte[OnionHeader.SizeFor(Network)];
        header[0] = OnionHeader.Version;
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(1), key.Epoch);
        alpha.CopyTo(header, 5);
        beta.CopyTo(header, 37);
        HMACSHA256.HashData(keys.HeaderMac, header.AsSpan(0, 37 + beta.Length))[..16].CopyTo(header, 37 + beta.Length);
        return header;
    }

    private static IEnumerable<(string Name, byte[] Slot)> SlotCases()
    {
        yield return ("deliver to the default service", Deliver(1, 2));
        yield return ("deliver to a 32-byte service name", Deliver(1, 2, "abcdefghijklmnopqrstuvwxyz012345"));
        yield return ("deliver to a UTF-8 service name", Deliver(2, 2, "café"));
        yield return ("deliver with the network's longest deadline", Deliver(1, 6));
        yield return ("deliver with a sealed trace context", With(Deliver(1, 2), s => { s[3] = 1; s.AsSpan(88, 32).Fill(0x5a); }));
        yield return ("relay", Relay());
        yield return ("a deadline above the network's cap", Deliver(1, 7));
        yield return ("an undefined deadline class", Deliver(1, 8));
        yield return ("a flag other than bit 0", With(Deliver(1, 2), s => s[3] = 2));
        yield return ("a byte of the last 8 set", With(Deliver(1, 2), s => s[127] = 1));
        yield return ("a sealed trace without its flag", With(Deliver(1, 2), s => s[100] = 1));
        yield return ("command 0", With(Deliver(1, 2), s => s[0] = 0));
        yield return ("command 3", With(Deliver(1, 2), s => s[0] = 3));
        yield return ("relay with a mode", With(Relay(), s => s[1] = 1));
        yield return ("relay to an all-zero node id", With(Relay(), s => s.AsSpan(8, 32).Clear()));
        yield return ("deliver with mode 0", Deliver(0, 2));
        yield return ("deliver with mode 4", Deliver(4, 2));
        yield return ("deliver a reply block (mode 3)", Deliver(3, 2));
        yield return ("deliver a reply block with a reply id", With(Deliver(3, 2), s => s.AsSpan(36, 16).Fill(0x21)));
        yield return ("deliver a reply block above the deadline cap", Deliver(3, 7));
        yield return ("deliver duplex with a reply id", With(Deliver(1, 2), s => s[36] = 1));
        yield return ("deliver with byte 87 set", With(Deliver(1, 2), s => s[87] = 1));
        yield return ("a service name that is not UTF-8", With(Deliver(1, 2, "ab"), s => s[5] = 0xff));
        yield return ("a service name with a byte after its end", With(Deliver(1, 2, "ab"), s => s[7] = (byte)'c'));
        yield return ("deliver a reply block with a service name", With(Deliver(3, 2, "web"), s => s.AsSpan(36, 16).Fill(0x21)));
        yield return ("deliver a reply block with byte 60 set", With(Deliver(3, 2), s => { s.AsSpan(36, 16).Fill(0x21); s[60] = 1; }));

        static byte[] Deliver(byte mode, byte deadline, string service = "")
        {
            var slot = new byte[SlotSize];
            (slot[0], slot[1], slot[2]) = (2, mode, deadline);
            Encoding.UTF8.GetBytes(service).CopyTo(slot, 4);
            return slot;
        }

        static byte[] Relay()
        {
            var slot = new byte[SlotSize];
            (slot[0], slot[2]) = (1, 2);
            BinaryPrimitives.WriteUInt32BigEndian(slot.AsSpan(4), 8);
            SHA256.HashData("overlay/v1 test vector node 1"u8).CopyTo(slot, 8);
            slot.AsSpan(40, 32).Fill(0x42);
            slot.AsSpan(72, 16).Fill(0x24);
            return slot;
        }

        static byte[] With(byte[] slot, Action<byte[]> change)
        {
            change(slot);
            return slot;
        }
    }

    private static IEnumerable<(string Name, Func<byte[], byte[]> Change)> OuterCases()
    {
        yield return ("version 2", h => Set(h, 0, 2));
        yield return ("an epoch the hop does not hold", h => Set(h, 4, 8));
        yield return ("alpha with its top bit set", h => Set(h, 36, (byte)(h[36] | 0x80)));
        // p + 9 names the base point, which is not of low order: only the canonical check refuses it before the MAC does.
        yield return ("alpha = p + 9, a non-canonical encoding", h =>
        {
            h.AsSpan(5, 32).Fill(0xff);
            (h[5], h[36]) = (0xf6, 0x7f);
            return h;
        });
        yield return ("alpha of low order (u = 0)", h =>
        {
            h.AsSpan(5, 32).Clear();
            return h;
        });
        yield return ("a changed gamma", h => Set(h, h.Length - 1, (byte)(h[^1] ^ 1)));
        yield return ("a changed byte of beta", h => Set(h, 100, (byte)(h[100] ^ 1)));
        yield return ("one byte short", h => h[..^1]);

        static byte[] Set(byte[] header, int offset, byte value)
        {
            header[offset] = value;
            return header;
        }
    }
}
