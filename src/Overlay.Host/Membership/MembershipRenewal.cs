using System.Diagnostics.Metrics;
using Grpc.Core;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Overlay.Host.Link;
using Overlay.Host.Options;
using Overlay.Host.Telemetry;
using Overlay.Identity;
using Overlay.Membership;
using Overlay.Protocol.V1;

namespace Overlay.Host.Membership;

/// <summary>
/// Keeps this node's membership of a private network current: an authority issues its own; a node
/// with <c>Overlay:Membership:JoinUrl</c> joins through that authority with its token, then renews
/// at half-life with the membership it holds (no token spent). A failure is logged and counted on
/// <c>overlay.membership.renewal.failures</c>, and retried every <c>Overlay:Membership:RetryInterval</c>.
/// </summary>
internal sealed class MembershipRenewal : BackgroundService
{
    public const string ReasonTag = "overlay.membership.renewal.failure";

    private readonly NodeState _node;
    private readonly MembershipBook _book;
    private readonly MembershipAuthority _authority;
    private readonly PeerChannels _channels;
    private readonly OverlayOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<MembershipRenewal> _logger;
    private readonly Counter<long> _failures;

    public MembershipRenewal(NodeState node, MembershipBook book, MembershipAuthority authority, PeerChannels channels, IOptions<OverlayOptions> options,
        IMeterFactory meterFactory, TimeProvider time, ILogger<MembershipRenewal> logger)
    {
        _node = node;
        _book = book;
        _authority = authority;
        _channels = channels;
        _options = options.Value;
        _time = time;
        _logger = logger;
        _failures = OverlayTelemetry.NodeMeter(meterFactory, node).CreateCounter<long>("overlay.membership.renewal.failures", "{attempt}",
            "Failed attempts to join or renew this node's membership, by overlay.membership.renewal.failure");
    }

    private MembershipOptions Options => _options.Membership;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!_book.IsPrivate || (!_authority.IsAuthority && Options.JoinUrl is null))
        {
            return; // open network, or memberships are handed to this node another way
        }

        try
        {
            await _node.Published.WaitAsync(stoppingToken);
            while (true)
            {
                var own = _book.Own;
                var renewAt = own is null ? _time.GetUtcNow() : own.NotBefore + ((own.NotAfter - own.NotBefore) / 2);
                var wait = renewAt - _time.GetUtcNow();
                if (wait > TimeSpan.Zero)
                {
                    await Task.Delay(wait, _time, stoppingToken);
                    continue;
                }

                if (await TryRenewAsync(own, stoppingToken) is { } failure)
                {
                    _failures.Add(1, new KeyValuePair<string, object?>(ReasonTag, failure.Tag));
                    MembershipLog.RenewalFailed(_logger, Options.JoinUrl ?? "this authority", failure.Reason, Options.RetryInterval);
                    await Task.Delay(Options.RetryInterval, _time, stoppingToken);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            Log.BackgroundServiceStopped(_logger, nameof(MembershipRenewal));
        }
    }

    // Null on success; else why, as a metric tag and a sentence.
    private async Task<(string Tag, string Reason)?> TryRenewAsync(NodeMembership? current, CancellationToken stoppingToken)
    {
        if (_node.LinkEndpoint is not { } endpoint || _node.Descriptor is not { } descriptor)
        {
            return ("starting", "the node has no descriptor yet");
        }

        byte[] encoded;
        if (_authority.IsAuthority)
        {
            encoded = _authority.Issue(_node.Id, endpoint).Encoded.ToArray();
        }
        else
        {
            var request = new JoinRequest { SignedDescriptor = Google.Protobuf.ByteString.CopyFrom(descriptor.Encoded.Span) };
            if (current is not null)
            {
                request.Membership = Google.Protobuf.ByteString.CopyFrom(current.Encoded.Span);
            }
            else if (Options.TokenFile is { } file)
            {
                try
                {
                    request.Token = (await File.ReadAllTextAsync(file, stoppingToken)).Trim();
                }
                catch (IOException exception)
                {
                    return ("token_unreadable", $"the token file {file} cannot be read ({exception.Message})");
                }
            }

            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
            timeout.CancelAfter(_options.Directory.CallTimeout);
            try
            {
                using var channel = _channels.CreateTransient(new Uri(Options.JoinUrl!), NodeId.Parse(Options.JoinNodeId!));
                var response = await new Protocol.V1.Link.LinkClient(channel).JoinAsync(request, cancellationToken: timeout.Token);
                encoded = response.Membership.ToByteArray();
            }
            catch (RpcException exception) when (!stoppingToken.IsCancellationRequested)
            {
                // A refusal names its reason; a connection that failed or timed out is "unreachable", like the errors below
                // (the call timeout ends the call as Cancelled, the stopping token being still unset).
                var reason = exception.Trailers.GetValue(JoinRefusals.ReasonTrailer)
                    ?? (exception.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded || timeout.IsCancellationRequested ? "unreachable" : exception.StatusCode.ToString().ToLowerInvariant());
                return (reason, $"{exception.Status.StatusCode} ({reason})");
            }
            catch (Exception exception) when (exception is OperationCanceledException or HttpRequestException && !stoppingToken.IsCancellationRequested)
            {
                return ("unreachable", exception.Message);
            }
        }

        var error = _book.SetOwn(encoded);
        return error == MembershipError.None ? null : (error.ToTag(), $"the membership received is refused: {error.Describe()}");
    }
}
