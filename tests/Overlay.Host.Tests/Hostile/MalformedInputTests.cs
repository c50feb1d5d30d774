using Overlay.Cells;
using Overlay.Errors;
using Overlay.Host.Tests.Infrastructure;
using Overlay.Protocol;

namespace Overlay.Host.Tests.Hostile;

/// <summary>
/// Bad input on the link, sent by a raw client: every case ends with the exact gRPC status and
/// <c>overlay-error</c> reason, never UNKNOWN, and the node stays healthy.
/// </summary>
public sealed class MalformedInputTests(HostileFixture fixture) : IClassFixture<HostileFixture>
{
    private const int InvalidArgument = 3;
    private const int ResourceExhausted = 8;
    private const int FailedPrecondition = 9;

    private TestCluster Cluster => fixture.Cluster;

    private ClusterNode Target => Cluster[1];

    public static TheoryData<string> BadFirstMessages => ["garbage", "empty", "short header", "long header", "cells before the header", "ragged cells"];

    [Theory]
    [MemberData(nameof(BadFirstMessages))]
    public async Task A_bad_first_message_is_refused_as_malformed(string shape)
    {
        var headerSize = HostileWire.HeaderSize(Target);
        var cellSize = HostileWire.CellSize(Target);
        var message = shape switch
        {
            // Field 1 claiming far more bytes than follow: not protobuf.
            "garbage" => [0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x01, 0x02],
            "empty" => [],
            "short header" => RawProtobuf.LinkMessage(new byte[headerSize / 2], default),
            "long header" => RawProtobuf.LinkMessage(new byte[headerSize + 1], default),
            "cells before the header" => RawProtobuf.LinkMessage(default, new byte[cellSize]),
            "ragged cells" => RawProtobuf.LinkMessage(new byte[headerSize], new byte[cellSize + 1]),
            _ => throw new ArgumentOutOfRangeException(nameof(shape)),
        };

        var outcome = await CallAsync(RawLinkClient.Relay, message);

        AssertRefused(outcome, InvalidArgument, TunnelErrorKind.Malformed);
    }

    [Fact]
    public async Task A_relay_message_over_the_limit_is_refused_as_limit_exceeded()
    {
        var largest = LinkLimits.LargestMessage(Target.Node.State.Network, 8);
        var message = RawProtobuf.LinkMessage(new byte[HostileWire.HeaderSize(Target)], new byte[largest]);

        var outcome = await CallAsync(RawLinkClient.Relay, message);

        AssertRefused(outcome, ResourceExhausted, TunnelErrorKind.LimitExceeded);
    }

    [Fact]
    public async Task A_random_header_is_refused_as_tampered()
    {
        // Random bytes behind a valid version and epoch: the hop does the whole agreement before the MAC fails.
        using var keys = HostileWire.HeaderTo(Target);
        var header = new byte[keys.Header.Length];
        Random.Shared.NextBytes(header);
        keys.Header.AsSpan(0, 5).CopyTo(header);
        header[5 + 31] &= 0x7F; // a canonical X25519 point, else it is refused as malformed before the agreement

        var outcome = await CallAsync(RawLinkClient.Relay, RawProtobuf.LinkMessage(header, default));

        AssertRefused(outcome, FailedPrecondition, TunnelErrorKind.Tampered);
    }

    [Fact]
    public async Task A_replayed_header_is_refused_as_replayed()
    {
        using var keys = HostileWire.HeaderTo(Target);
        using var deadline = TestTimeouts.After(20);
        var reply = await RawOrigin.RoundTripAsync(Target.LinkEndpoint, keys, new byte[] { 1, 2, 3 }, deadline.Token);
        Assert.Equal(new byte[] { 1, 2, 3 }, reply);

        var outcome = await CallAsync(RawLinkClient.Relay, RawProtobuf.LinkMessage(keys.Header, default));

        AssertRefused(outcome, FailedPrecondition, TunnelErrorKind.Replayed);
    }

    [Fact]
    public async Task A_second_header_in_a_tunnel_is_a_protocol_violation_in_an_error_cell()
    {
        using var keys = HostileWire.HeaderTo(Target);
        using var client = new RawLinkClient(Target.LinkEndpoint);
        using var deadline = TestTimeouts.After(20);
        using var call = await client.OpenAsync(RawLinkClient.Relay, deadline.Token);
        await call.WriteMessageAsync(RawProtobuf.LinkMessage(keys.Header, default));
        await call.WriteMessageAsync(RawProtobuf.LinkMessage(keys.Header, default));
        call.CompleteRequest();

        var outcome = await call.OutcomeAsync();

        // Past the header the hop has keys: the reason travels in a sealed error cell, the call ends OK.
        Assert.Equal(0, outcome.Status);
        Assert.Null(outcome.OverlayError);
        Assert.Equal(TunnelErrorKind.ProtocolViolation, OpenError(keys, outcome));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public async Task Garbage_after_the_header_is_a_protocol_violation_in_an_error_cell(int relays)
    {
        // At the destination, or at a relay (then the destination is the next node).
        var route = relays == 0 ? new[] { Target.Descriptor } : [Target.Descriptor, Cluster[2].Descriptor];
        using var keys = RawOrigin.Build(Target.Node.State.Network, route);
        using var client = new RawLinkClient(Target.LinkEndpoint);
        using var deadline = TestTimeouts.After(20);
        using var call = await client.OpenAsync(RawLinkClient.Relay, deadline.Token);
        await call.WriteMessageAsync(RawProtobuf.LinkMessage(keys.Header, default));
        await call.TryWriteAsync(RawCall.Frame([0x12, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x01]));
        call.CompleteRequest();

        var outcome = await call.OutcomeAsync();

        Assert.Equal(0, outcome.Status);
        Assert.Equal(TunnelErrorKind.ProtocolViolation, OpenError(keys, outcome));
    }

    [Fact]
    public async Task Failures_a_peer_causes_are_logged_once_per_interval_without_a_stack_trace()
    {
        var logs = Cluster.Logs.Position;
        for (var i = 0; i < 5; i++)
        {
            using var keys = HostileWire.HeaderTo(Target);
            using var client = new RawLinkClient(Target.LinkEndpoint);
            using var deadline = TestTimeouts.After(20);
            using var call = await client.OpenAsync(RawLinkClient.Relay, deadline.Token);
            await call.WriteMessageAsync(RawProtobuf.LinkMessage(keys.Header, default));
            await call.WriteMessageAsync(RawProtobuf.LinkMessage(keys.Header, default));
            call.CompleteRequest();
            Assert.Equal(TunnelErrorKind.ProtocolViolation, OpenError(keys, await call.OutcomeAsync()));
        }

        var warnings = Cluster.Logs.WarningsSince(logs).Where(e => e.Node == Target.Name).ToList();
        // One, or none when an earlier case of this class already used the interval for the same reason.
        Assert.True(warnings.Count <= 1 && warnings.All(w => w.Exception is null), $"expected at most one warning, without an exception, for five failures, got: {string.Join("; ", warnings)}");
    }

    [Fact]
    public async Task Garbage_in_exchange_and_prove_is_refused_as_malformed()
    {
        byte[] garbage = [0x12, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x01];

        AssertRefused(await CallAsync(RawLinkClient.Exchange, garbage), InvalidArgument, TunnelErrorKind.Malformed);
        AssertRefused(await CallAsync(RawLinkClient.Prove, garbage), InvalidArgument, TunnelErrorKind.Malformed);
    }

    [Fact]
    public async Task An_oversized_exchange_or_proof_is_refused_as_limit_exceeded()
    {
        // 66 descriptors of 512 bytes fit no legitimate exchange (our own and 64 known at most), though they fit
        // in a link message; 200 do not even fit there. A proof request carries a 32-byte challenge.
        foreach (var descriptors in new[] { 66, 200 })
        {
            using var exchange = new MemoryStream();
            for (var i = 0; i < descriptors; i++)
            {
                RawProtobuf.WriteField(exchange, 2, new byte[512]);
            }

            AssertRefused(await CallAsync(RawLinkClient.Exchange, exchange.ToArray()), ResourceExhausted, TunnelErrorKind.LimitExceeded);
        }

        AssertRefused(await CallAsync(RawLinkClient.Prove, RawProtobuf.Field(1, new byte[4096])), ResourceExhausted, TunnelErrorKind.LimitExceeded);
    }

    internal static void AssertRefused(RawOutcome outcome, int status, TunnelErrorKind reason)
    {
        Assert.True(outcome.Status == status && outcome.OverlayError == (int)reason, $"expected grpc-status {status} with overlay-error {(int)reason} ({reason}), got {outcome}");
    }

    internal static TunnelErrorKind OpenError(RawTunnelKeys keys, RawOutcome outcome)
    {
        var cellSize = keys.Codec.Layout.CellSize;
        var plaintext = new byte[keys.Codec.Layout.PlaintextBufferSize];
        foreach (var message in outcome.Messages)
        {
            // The response message's field 2 (cells): tag, one- or two-byte length, then whole cells.
            var offset = 1;
            while ((message[offset++] & 0x80) != 0)
            {
            }

            for (; offset + cellSize <= message.Length; offset += cellSize)
            {
                var opened = keys.Codec.OpenBackward(message.AsSpan(offset, cellSize), plaintext);
                if (opened.IsError)
                {
                    return opened.Error;
                }
            }
        }

        return TunnelErrorKind.None;
    }

    private async Task<RawOutcome> CallAsync(string path, byte[] message)
    {
        using var client = new RawLinkClient(Target.LinkEndpoint);
        using var deadline = TestTimeouts.After(20);
        return await client.CallAsync(path, [message], deadline.Token);
    }
}
