using System.Security.Cryptography;
using System.Threading.Channels;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Overlay.Host.Link;
using Overlay.Host.Options;
using Overlay.Host.Telemetry;
using Overlay.Identity;
using Overlay.Protocol.V1;

namespace Overlay.Host.Directory;

/// <summary>
/// Finds peers and keeps their status current: joins through the seeds, gossips signed
/// descriptors with a few random peers each round, and admits a descriptor only after the node
/// at its endpoint proved it holds the identity (so nobody can point the network at a victim's
/// address). Every directory call has its own deadline and a short-lived connection.
/// </summary>
internal sealed class DirectoryService : BackgroundService
{
    private static ReadOnlySpan<byte> ProofContext => "overlay/v1 proof"u8;

    private readonly NodeState _node;
    private readonly PeerDirectory _directory;
    private readonly PeerChannels _channels;
    private readonly OverlayOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<DirectoryService> _logger;
    private readonly Channel<NodeDescriptor> _toProve;
    private readonly HashSet<NodeId> _proving = [];
    private readonly Lock _provingLock = new();

    public DirectoryService(NodeState node, PeerDirectory directory, PeerChannels channels, IOptions<OverlayOptions> options,
        TimeProvider time, ILogger<DirectoryService> logger)
    {
        _node = node;
        _directory = directory;
        _channels = channels;
        _options = options.Value;
        _time = time;
        _logger = logger;
        // Bounded: a flood of gossip cannot queue unbounded proofs; extra descriptors wait for the next
        // round. (Wait mode: TryWrite then says false when full, where DropWrite would say true and drop.)
        _toProve = Channel.CreateBounded<NodeDescriptor>(new BoundedChannelOptions(_options.Directory.MaxDescriptorsPerExchange * 4)
        {
            FullMode = BoundedChannelFullMode.Wait,
        });
    }

    private DirectoryOptions Options => _options.Directory;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!await WaitForStartAsync(stoppingToken))
        {
            return;
        }

        var provers = Enumerable.Range(0, Options.ConcurrentProofs).Select(_ => ProveLoopAsync(stoppingToken)).ToArray();
        try
        {
            await BootstrapAsync(stoppingToken);
            using var timer = new PeriodicTimer(Options.GossipInterval, _time);
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                await GossipRoundAsync(stoppingToken);
                _directory.Expire(_options.OnionKeys.ClockSkew);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // A normal end, also when only this service is stopped: the host would take a cancelled task
            // from a service it did not stop itself as a failure, and stop the node.
            Log.BackgroundServiceStopped(_logger, nameof(DirectoryService));
        }
        finally
        {
            // The provers end when the queue is complete (what is left fails fast on the stopping token).
            _toProve.Writer.TryComplete();
            await Task.WhenAll(provers);
        }
    }

    private async Task<bool> WaitForStartAsync(CancellationToken stoppingToken)
    {
        try
        {
            await _node.Published.WaitAsync(stoppingToken);
            return true;
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            return false;
        }
    }

    private async Task BootstrapAsync(CancellationToken stoppingToken)
    {
        foreach (var seed in Options.Seeds)
        {
            var endpoint = new Uri(seed);
            if (endpoint == _node.LinkEndpoint)
            {
                continue;
            }

            var descriptor = await ProveAsync(endpoint, expected: null, stoppingToken);
            if (descriptor is null)
            {
                Log.SeedUnreachable(_logger, seed, "no valid proof");
                continue;
            }

            await ExchangeAsync(descriptor, stoppingToken);
        }
    }

    private async Task GossipRoundAsync(CancellationToken stoppingToken)
    {
        var partners = _directory.Sample(Options.GossipFanout, PeerStatus.Up, PeerStatus.Suspect);
        if (partners.Count < Options.GossipFanout)
        {
            // Down peers get probed too, one at a time, so a peer that comes back is noticed.
            partners.AddRange(_directory.Sample(1, PeerStatus.Down));
        }

        if (partners.Count == 0)
        {
            await BootstrapAsync(stoppingToken);
            return;
        }

        await Task.WhenAll(partners.Select(p => ExchangeAsync(p.Descriptor, stoppingToken)));
    }

    private async Task ExchangeAsync(NodeDescriptor peer, CancellationToken stoppingToken)
    {
        var self = _node.Descriptor;
        if (self is null)
        {
            return;
        }

        var request = new DescriptorExchange { Self = ByteString.CopyFrom(self.Encoded.Span) };
        foreach (var known in _directory.Sample(Options.MaxDescriptorsPerExchange, PeerStatus.Up))
        {
            if (known.Descriptor.Id != peer.Id)
            {
                request.Known.Add(ByteString.CopyFrom(known.Descriptor.Encoded.Span));
            }
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        timeout.CancelAfter(Options.CallTimeout);
        try
        {
            using var channel = _channels.CreateTransient(peer.Endpoint);
            var response = await new Protocol.V1.Link.LinkClient(channel).ExchangeAsync(request, cancellationToken: timeout.Token);
            _directory.ReportSuccess(peer.Id);
            Learn(response, $"gossip from {peer.Id.ToShortString()}");
        }
        catch (Exception exception) when (exception is RpcException or OperationCanceledException or HttpRequestException)
        {
            if (stoppingToken.IsCancellationRequested)
            {
                return; // shutting down, not a peer failure
            }

            Log.GossipFailed(_logger, peer.Id.ToShortString(), exception.Message);
            _directory.ReportFailure(peer.Id);
        }
    }

    /// <summary>Dials a link endpoint an operator named and admits the node there once it proves its identity. Null when it does not.</summary>
    internal Task<NodeDescriptor?> AddPeerAsync(Uri endpoint, CancellationToken cancellationToken) => ProveAsync(endpoint, expected: null, cancellationToken);

    /// <summary>Answers a peer's gossip: learn what it sent, send back ours.</summary>
    internal DescriptorExchange HandleExchange(DescriptorExchange request)
    {
        if (request.Known.Count > Options.MaxDescriptorsPerExchange)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"at most {Options.MaxDescriptorsPerExchange} descriptors per exchange"));
        }

        Learn(request, "an incoming exchange");
        var response = new DescriptorExchange();
        if (_node.Descriptor is { } self)
        {
            response.Self = ByteString.CopyFrom(self.Encoded.Span);
        }

        foreach (var known in _directory.Sample(Options.MaxDescriptorsPerExchange, PeerStatus.Up))
        {
            response.Known.Add(ByteString.CopyFrom(known.Descriptor.Encoded.Span));
        }

        return response;
    }

    /// <summary>Signs the caller's challenge with our descriptor, proving we hold our identity at this endpoint.</summary>
    internal ProofResponse HandleProve(ProofRequest request)
    {
        if (request.Challenge.Length != 32)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "the challenge is 32 bytes"));
        }

        var self = _node.Descriptor ?? throw new RpcException(new Status(StatusCode.Unavailable, "the node is starting"));
        var signature = new byte[NodeIdentity.SignatureSize];
        _node.Identity.Sign(ProofMessage(request.Challenge.Span, self.Encoded.Span), signature);
        return new ProofResponse { SignedDescriptor = ByteString.CopyFrom(self.Encoded.Span), Signature = ByteString.CopyFrom(signature) };
    }

    private void Learn(DescriptorExchange exchange, string source)
    {
        if (exchange.Known.Count > Options.MaxDescriptorsPerExchange)
        {
            return;
        }

        Consider(exchange.Self, source);
        foreach (var encoded in exchange.Known)
        {
            Consider(encoded, source);
        }
    }

    private void Consider(ByteString encoded, string source)
    {
        if (encoded.IsEmpty)
        {
            return;
        }

        // Most gossip repeats what we know: skip the signature check for byte-identical descriptors.
        if (encoded.Length > 1 + NodeId.Size
            && _directory.Find(new NodeId(encoded.Span.Slice(1, NodeId.Size))) is { Status: PeerStatus.Up } known
            && known.Descriptor.Encoded.Span.SequenceEqual(encoded.Span))
        {
            return;
        }

        var error = NodeDescriptor.TryParse(encoded.Span, out var descriptor);
        if (error == DescriptorError.None)
        {
            error = descriptor!.Validate(_node.Network, _time.GetUtcNow(), _options.OnionKeys.ClockSkew);
        }

        if (error != DescriptorError.None)
        {
            Log.DescriptorRejected(_logger, source, error.Describe());
            return;
        }

        // The peer cap stops new peers only: a known peer's newer descriptor (a rotated key) is always taken.
        if (!_directory.IsAdmitted(descriptor!.Id) || _directory.IsKnown(descriptor)
            || (_directory.Find(descriptor.Id) is null && _directory.Peers.Count >= Options.MaxPeers))
        {
            return;
        }

        lock (_provingLock)
        {
            if (!_proving.Add(descriptor.Id))
            {
                return;
            }
        }

        if (!_toProve.Writer.TryWrite(descriptor))
        {
            lock (_provingLock)
            {
                _proving.Remove(descriptor.Id);
            }
        }
    }

    private async Task ProveLoopAsync(CancellationToken stoppingToken)
    {
        // Not the stopping token: the loop ends when ExecuteAsync completes the queue.
        await foreach (var descriptor in _toProve.Reader.ReadAllAsync(CancellationToken.None))
        {
            try
            {
                var proved = await ProveAsync(descriptor.Endpoint, descriptor.Id, stoppingToken);
                if (proved is null && !stoppingToken.IsCancellationRequested && _directory.Find(descriptor.Id) is not null)
                {
                    _directory.ReportFailure(descriptor.Id);
                }
            }
            finally
            {
                lock (_provingLock)
                {
                    _proving.Remove(descriptor.Id);
                }
            }
        }
    }

    /// <summary>Dials <paramref name="endpoint"/>, checks its proof, and admits its descriptor. Null when it fails.</summary>
    private async Task<NodeDescriptor?> ProveAsync(Uri endpoint, NodeId? expected, CancellationToken stoppingToken)
    {
        var challenge = RandomNumberGenerator.GetBytes(32);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        timeout.CancelAfter(Options.CallTimeout);
        var label = expected?.ToShortString() ?? endpoint.ToString();
        try
        {
            using var channel = _channels.CreateTransient(endpoint);
            var response = await new Protocol.V1.Link.LinkClient(channel)
                .ProveAsync(new ProofRequest { Challenge = ByteString.CopyFrom(challenge) }, cancellationToken: timeout.Token);
            var error = NodeDescriptor.TryParse(response.SignedDescriptor.Span, out var descriptor);
            if (error == DescriptorError.None)
            {
                error = descriptor!.Validate(_node.Network, _time.GetUtcNow(), _options.OnionKeys.ClockSkew);
            }

            if (error != DescriptorError.None)
            {
                Log.ProofFailed(_logger, label, error.Describe());
                return null;
            }

            if (descriptor!.Endpoint != endpoint || (expected is { } id && descriptor.Id != id))
            {
                Log.ProofFailed(_logger, label, "the node at this endpoint has another identity or advertises another endpoint");
                return null;
            }

            if (!NodeIdentity.Verify(descriptor.Id, ProofMessage(challenge, response.SignedDescriptor.Span), response.Signature.Span))
            {
                Log.ProofFailed(_logger, label, "bad proof signature");
                return null;
            }

            _directory.AddConfirmed(descriptor);
            return descriptor;
        }
        catch (Exception exception) when (exception is RpcException or OperationCanceledException or HttpRequestException)
        {
            if (!stoppingToken.IsCancellationRequested)
            {
                Log.ProofFailed(_logger, label, exception.Message);
            }

            return null;
        }
    }

    private static byte[] ProofMessage(ReadOnlySpan<byte> challenge, ReadOnlySpan<byte> descriptor)
    {
        var message = new byte[ProofContext.Length + challenge.Length + descriptor.Length];
        ProofContext.CopyTo(message);
        challenge.CopyTo(message.AsSpan(ProofContext.Length));
        descriptor.CopyTo(message.AsSpan(ProofContext.Length + challenge.Length));
        return message;
    }
}
