using Overlay.Crypto;
using Overlay.Errors;
using Overlay.Onion;
using Overlay.Protocol;
using Overlay.Tests.Support;

namespace Overlay.Tests.Onion;

/// <summary>
/// The slot's fields per command (docs/protocol.md §6.1): a byte a command does not use is a
/// channel an origin could use to mark a tunnel for one hop, so it must be zero, checked at the hop.
/// Each case rewrites one byte of the receiving hop's slot and re-MACs the header with that hop's
/// key, as only the origin could: the hop must still refuse it.
/// </summary>
public sealed class SlotFieldTests
{
    private static readonly NetworkParameters Parameters = new() { MaxRelays = 4 };

    // Offsets of the wire spec, written out here rather than taken from the code under test.
    private const int Command = 0;
    private const int Mode = 1;
    private const int Deadline = 2;
    private const int Flags = 3;
    private const int ServiceStart = 4;
    private const int ReplyIdStart = 36;
    private const int NextIdStart = 8;
    private const int SealedTraceStart = 88;
    private const int TailStart = 120;

    public static TheoryData<int, byte> RelayViolations() => new()
    {
        { Mode, 1 },
        { Flags, 0x02 },
        { Flags, 0x80 },
        { SealedTraceStart, 1 },
        { SealedTraceStart + 31, 0x40 },
        { TailStart, 1 },
        { TailStart + 7, 0xff },
        { Deadline, 8 },
        { Command, 0 },
        { Command, 3 },
    };

    [Theory]
    [MemberData(nameof(RelayViolations))]
    public void A_relay_slot_with_a_byte_its_command_does_not_use_is_malformed(int offset, byte value)
    {
        using var network = new TestNetwork(Parameters, 3, seed: 900);
        var header = Build(network, relays: 2, DeadlineClass.Seconds30);
        var forged = Forge(network.Nodes[0], header, offset, value);

        using var result = network.Nodes[0].Processor.Process(forged, new byte[forged.Length]);

        Assert.Equal(TunnelErrorKind.Malformed, result.Rejection);
    }

    public static TheoryData<int, byte> DeliverViolations() => new()
    {
        { ReplyIdStart, 1 },
        { ReplyIdStart + 15, 1 },
        { ReplyIdStart + 16, 1 },
        { SealedTraceStart - 1, 1 },
        { SealedTraceStart, 1 },
        { TailStart + 3, 1 },
        { Mode, 0 },
        { Mode, 4 },
        { Flags, 0x04 },
        // A byte after the name's terminating zero (the default service's name is empty).
        { ServiceStart + 1, (byte)'x' },
        // Not UTF-8.
        { ServiceStart, 0xff },
    };

    [Theory]
    [MemberData(nameof(DeliverViolations))]
    public void A_deliver_slot_with_a_byte_its_command_does_not_use_is_malformed(int offset, byte value)
    {
        using var network = new TestNetwork(Parameters, 1, seed: 910);
        var header = Build(network, relays: 0, DeadlineClass.Seconds30);
        var forged = Forge(network.Nodes[0], header, offset, value);

        using var result = network.Nodes[0].Processor.Process(forged, new byte[forged.Length]);

        Assert.Equal(TunnelErrorKind.Malformed, result.Rejection);
    }

    [Fact]
    public void A_reply_mode_slot_without_a_reply_id_is_malformed()
    {
        // Mode 3 (a reply block, section 7.8) needs a reply id; the builder never leaves it zero.
        using var network = new TestNetwork(Parameters, 1, seed: 920);
        var forged = Forge(network.Nodes[0], Build(network, relays: 0, DeadlineClass.Seconds30), Mode, 3);

        using var result = network.Nodes[0].Processor.Process(forged, new byte[forged.Length]);

        Assert.Equal(TunnelErrorKind.Malformed, result.Rejection);
    }

    [Fact]
    public void A_reply_block_header_is_unsupported_on_a_mac_array_network()
    {
        var macArray = Parameters with { Construction = CellConstruction.MacArray };
        using var network = new TestNetwork(macArray, 1, seed: 921);
        var builder = new OnionHeaderBuilder(macArray, new SeededOnionRandom(921));
        var header = new byte[builder.HeaderSize];
        using (builder.Build(network.Route(0), TunnelMode.OneWay, DeadlineClass.Seconds30, header))
        {
        }

        var forged = Forge(network.Nodes[0], header, Mode, 3);
        forged = Forge(network.Nodes[0], forged, 36, 0x21);

        using var result = network.Nodes[0].Processor.Process(forged, new byte[forged.Length]);

        Assert.Equal(TunnelErrorKind.UnsupportedVersion, result.Rejection);
    }

    [Fact]
    public void The_forged_slot_is_accepted_when_the_byte_is_left_as_it_was()
    {
        // The forging itself is sound: rewriting a byte to its own value keeps the header valid.
        using var network = new TestNetwork(Parameters, 3, seed: 930);
        var header = Build(network, relays: 2, DeadlineClass.Seconds30);
        var same = Forge(network.Nodes[0], header, TailStart, 0);

        using var result = network.Nodes[0].Processor.Process(same, new byte[same.Length]);

        Assert.Equal(HeaderOutcome.Relay, result.Outcome);
        Assert.Equal(network.Nodes[1].Id, result.NextHop);
    }

    [Fact]
    public void A_deadline_above_the_networks_cap_is_refused_at_the_hop_and_never_built()
    {
        var capped = Parameters with { MaxDeadlineClass = DeadlineClass.Minutes15 };
        using var network = new TestNetwork(capped, 2, seed: 940);
        // The same keys on a second network: the forged header shares the genuine one's replay tag.
        using var twin = new TestNetwork(capped, 2, seed: 940);
        var header = Build(network, relays: 1, DeadlineClass.Minutes15);
        var forged = Forge(twin.Nodes[0], header, Deadline, (byte)DeadlineClass.Hour1);

        using var atCap = network.Nodes[0].Processor.Process(header, new byte[header.Length]);
        using var aboveCap = twin.Nodes[0].Processor.Process(forged, new byte[forged.Length]);

        Assert.Equal(HeaderOutcome.Relay, atCap.Outcome);
        Assert.Equal(DeadlineClass.Minutes15, atCap.Deadline);
        Assert.Equal(TunnelErrorKind.Malformed, aboveCap.Rejection);
        var builder = new OnionHeaderBuilder(capped);
        Assert.Throws<ArgumentException>(() => builder.Build(network.Route(1), TunnelMode.Duplex, DeadlineClass.Hour1, new byte[builder.HeaderSize]));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("echo")]
    [InlineData("web")]
    [InlineData("a-name-of-exactly-thirty-two-b!!")]
    [InlineData("ünïcödé")]
    public void The_service_name_reaches_the_destination_only(string? service)
    {
        using var network = new TestNetwork(Parameters, 3, seed: 950);
        var builder = new OnionHeaderBuilder(Parameters, new SeededOnionRandom(951));
        var header = new byte[builder.HeaderSize];
        using var keys = builder.Build(network.Route(2), TunnelMode.OneWay, DeadlineClass.Seconds30, header, service: service);

        var next = header;
        for (var hop = 0; hop < 2; hop++)
        {
            var outgoing = new byte[header.Length];
            using var relayed = network.Nodes[hop].Processor.Process(next, outgoing);
            Assert.Equal(HeaderOutcome.Relay, relayed.Outcome);
            Assert.Null(relayed.Service);
            next = outgoing;
        }

        using var delivered = network.Nodes[2].Processor.Process(next, new byte[header.Length]);
        Assert.Equal(HeaderOutcome.Deliver, delivered.Outcome);
        Assert.Equal(TunnelMode.OneWay, delivered.Mode);
        Assert.Equal(service, delivered.Service);
    }

    [Theory]
    [InlineData("")]
    [InlineData("a\0b")]
    [InlineData("a-name-of-thirty-three-bytes-long")]
    public void A_service_name_that_does_not_fit_is_never_built(string service)
    {
        using var network = new TestNetwork(Parameters, 1, seed: 960);
        var builder = new OnionHeaderBuilder(Parameters);

        Assert.Throws<ArgumentException>(() => builder.Build(network.Route(0), TunnelMode.Duplex, DeadlineClass.Seconds30, new byte[builder.HeaderSize], service: service));
    }

    private static byte[] Build(TestNetwork network, int relays, DeadlineClass deadline)
    {
        var builder = new OnionHeaderBuilder(network.Parameters, new SeededOnionRandom(relays + 1));
        var header = new byte[builder.HeaderSize];
        using var keys = builder.Build(network.Route(relays), TunnelMode.Duplex, deadline, header);
        return header;
    }

    // Sets byte `offset` of the slot `node` reads to `value` and recomputes the header's MAC under the
    // node's key: what an origin (the only party with that key) could send.
    private static byte[] Forge(TestNode node, byte[] header, int offset, byte value)
    {
        var forged = (byte[])header.Clone();
        Span<byte> shared = stackalloc byte[32];
        Assert.True(Sodium.ScalarMult(shared, node.Ring.Current!.Key.PrivateKey, forged.AsSpan(HeaderFields.AlphaStart, 32)));
        using var keys = HopKeys.Derive(shared);
        var keystream = new byte[offset + 1];
        using (var rho = new AesCtr(keys.HeaderStream))
        {
            rho.Keystream(0, keystream);
        }

        forged[HeaderFields.RoutingStart + offset] = (byte)(value ^ keystream[offset]);
        var gammaStart = HeaderFields.GammaStart(forged.Length);
        HeaderLayout.ComputeMac(keys.HeaderMac, forged.AsSpan(0, gammaStart), forged.AsSpan(gammaStart));
        return forged;
    }
}
