using System.Net;
using System.Security.Cryptography;
using System.Threading.Channels;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Overlay.Host.Link;
using Overlay.Host.Membership;
using Overlay.Membership;
using Overlay.Host.Options;
using Overlay.Host.Telemetry;
using Overlay.Identity;
using Overlay.Protocol.V1;

namespace Overlay.Host.Directory;

/// <summary>
/// Finds peers and keeps their status current: joins through the seeds, gossips signed
/// descriptors with a few random peers each round, and admits a descriptor only after the node
/// at its endpoint proved it holds the identity (so nobody can point the network at a victim's
/// address). Every directory call has its own deadline and a short-lived connection. Gossip is
/// hostile input: cheap checks come before signatures, an endpoint whose proof failed waits
/// before it is dialed again (<see cref="ProofCooldowns"/>), and callers are rate-limited per source
/// (<see cref="DirectoryCallGate"/>). In a private network each descriptor travels with its node's
/// membership, and one without a valid membership is neither proved (so never dialed) nor passed on.
/// </summary>
internal sealed class DirectoryService : BackgroundService
{
    private static ReadOnlySpan<byte> ProofContext => "overlay/v1 proof"u8;

    /// <summary>The most revocations one exchange carries (docs/protocol.md 3.1).</summary>
    public const int MaxRevocationsPerExchange = 256;

    private readonly NodeState _node;
    private readonly PeerDirectory _directory;
    private readonly PeerChannels _channels;
    private readonly MembershipBook _memberships;
    private readonly OverlayOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<DirectoryService> _logger;
    private readonly Channel<NodeDescriptor> _toProve;
    private readonly HashSet<NodeId> _proving = [];
    private readonly Lock _provingLock = new();
    private readonly ProofCooldowns _cooldowns;

    public DirectoryService(NodeState node, PeerDirectory directory, PeerChannels channels, MembershipBook memberships, IOptions<OverlayOptions> options,
        TimeProvider time, ILogger<DirectoryService> logger)
    {
        _node = node;
        _directory = directory;
        _channels = channels;
        _memberships = memberships;
        _options = options.Value;
        _time = time;
        _logger = logger;
        _cooldowns = new ProofCooldowns(_options.Directory, time);
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

    /// <summary>One gossip round now, outside the timer: for tests that count rounds.</summary>
    internal Task RunGossipRoundAsync(CancellationToken cancellationToken) => GossipRoundAsync(cancellationToken);

    private async Task GossipRoundAsync(CancellationToken stoppingToken)
    {
        if (_memberships.IsPrivate && _memberships.Own is null)
        {
            MembershipLog.OwnMembershipMissing(_logger);
        }

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

        var request = new DescriptorExchange { Self = ByteString.CopyFrom(self.Encoded.Span), SelfMembership = OwnMembership() };
        AddRevocations(request);
        AddKnown(request, _directory.Sample(Options.MaxDescriptorsPerExchange, PeerStatus.Up).Where(known => known.Descriptor.Id != peer.Id));

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        timeout.CancelAfter(Options.CallTimeout);
        try
        {
            // Over the connection tunnel hops already hold to this peer when there is one: a fresh
            // connection costs both sides a TLS handshake, at every gossip round.
            using var borrowed = _channels.TryBorrow(peer.Id, peer.Endpoint);
            using var transient = borrowed is null ? _channels.CreateTransient(peer.Endpoint, peer.Id) : null;
            var client = borrowed?.Client ?? new Protocol.V1.Link.LinkClient(transient!);
            var response = await client.ExchangeAsync(request, cancellationToken: timeout.Token);
            _directory.ReportSuccess(peer.Id);
            Learn(response, $"gossip from {peer.Id.ToShortString()}");
        }
        catch (Exception exception) when (exception is RpcException or OperationCanceledException or HttpRequestException or ObjectDisposedException)
        {
            // ObjectDisposedException: a revocation learned meanwhile closed the borrowed channel (PeerChannels.Close).
            if (stoppingToken.IsCancellationRequested)
            {
                return; // shutting down, not a peer failure
            }

            Log.GossipFailed(_logger, peer.Id.ToShortString(), exception.Message);
            _directory.ReportFailure(peer.Id);
        }
    }

    /// <summary>True while a proof of <paramref name="id"/> is queued or running.</summary>
    internal bool IsProving(NodeId id)
    {
        lock (_provingLock)
        {
            return _proving.Contains(id);
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

        if (request.KnownMemberships.Count > request.Known.Count)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "at most one membership per known descriptor"));
        }

        if (request.Revocations.Count > MaxRevocationsPerExchange)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"at most {MaxRevocationsPerExchange} revocations per exchange"));
        }

        Learn(request, "an incoming exchange");
        var response = new DescriptorExchange();
        if (_node.Descriptor is { } self)
        {
            response.Self = ByteString.CopyFrom(self.Encoded.Span);
            response.SelfMembership = OwnMembership();
        }

        AddRevocations(response);
        AddKnown(response, _directory.Sample(Options.MaxDescriptorsPerExchange, PeerStatus.Up));
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
        return new ProofResponse { SignedDescriptor = ByteString.CopyFrom(self.Encoded.Span), Signature = ByteString.CopyFrom(signature), Membership = OwnMembership() };
    }

    /// <summary>This node's membership as it travels; empty in an open network or while it has none.</summary>
    private ByteString OwnMembership() => _memberships.Own is { } own ? ByteString.CopyFrom(own.Encoded.Span) : ByteString.Empty;

    // Field framing per entry, generously: a tag byte and a length of up to three bytes.
    private const int FieldOverhead = 4;

    // The message must fit the link's message limit (Overlay:Link:MaxMessageBytes, the peer's too):
    // with memberships and revocations a full exchange would not, so entries stop at the budget.
    private int MessageBudget => _options.Link.MaxMessageBytes - 5;

    // Each descriptor with its membership at the same index (private network: sampled peers are members).
    private void AddKnown(DescriptorExchange exchange, IEnumerable<PeerInfo> peers)
    {
        var size = exchange.CalculateSize();
        foreach (var known in peers)
        {
            var membership = _memberships.IsPrivate ? _memberships.Find(known.Descriptor.Id) : null;
            size += known.Descriptor.Encoded.Length + FieldOverhead + (_memberships.IsPrivate ? (membership?.Encoded.Length ?? 0) + FieldOverhead : 0);
            if (size > MessageBudget)
            {
                return;
            }

            exchange.Known.Add(ByteString.CopyFrom(known.Descriptor.Encoded.Span));
            if (_memberships.IsPrivate)
            {
                exchange.KnownMemberships.Add(membership is null ? ByteString.Empty : ByteString.CopyFrom(membership.Encoded.Span));
            }
        }
    }

    // Every revocation kept, in a random order when there are more than an exchange carries (each
    // spreads eventually); they come first, within half the message budget, so descriptors keep room.
    private void AddRevocations(DescriptorExchange exchange)
    {
        if (!_memberships.IsPrivate)
        {
            return;
        }

        var revocations = _memberships.Revocations.ToArray();
        var fitting = Math.Min(MaxRevocationsPerExchange, (MessageBudget / 2) / (Overlay.Membership.MembershipRevocation.Size + FieldOverhead));
        if (revocations.Length > fitting)
        {
            RandomNumberGenerator.Shuffle(revocations.AsSpan());
        }

        foreach (var revocation in revocations.AsSpan(0, Math.Min(revocations.Length, fitting)))
        {
            exchange.Revocations.Add(ByteString.CopyFrom(revocation.Encoded.Span));
        }
    }

    private void Learn(DescriptorExchange exchange, string source)
    {
        if (exchange.Known.Count > Options.MaxDescriptorsPerExchange || exchange.KnownMemberships.Count > exchange.Known.Count
            || exchange.Revocations.Count > MaxRevocationsPerExchange)
        {
            return;
        }

        // Revocations first: a descriptor of a node revoked in the same exchange is refused.
        foreach (var revocation in exchange.Revocations)
        {
            _memberships.LearnRevocation(revocation.Span, source);
        }

        Consider(exchange.Self, exchange.SelfMembership, source);
        for (var i = 0; i < exchange.Known.Count; i++)
        {
            Consider(exchange.Known[i], i < exchange.KnownMemberships.Count ? exchange.KnownMemberships[i] : ByteString.Empty, source);
        }
    }

    private void Consider(ByteString encoded, ByteString membership, string source)
    {
        if (encoded.IsEmpty)
        {
            return;
        }

        if (encoded.Length > NodeDescriptor.MaxSize)
        {
            Log.DescriptorRejected(_logger, source, DescriptorError.TooLarge.Describe());
            return;
        }

        // Most gossip repeats what we know: a byte-identical descriptor needs no parsing nor signature
        // check; only a peer that is not up is worth proving again.
        NodeDescriptor? descriptor;
        if (encoded.Length > 1 + NodeId.Size
            && _directory.Find(new NodeId(encoded.Span.Slice(1, NodeId.Size))) is { } known
            && known.Descriptor.Encoded.Span.SequenceEqual(encoded.Span))
        {
            if (known.Status == PeerStatus.Up)
            {
                // A renewed membership spreads with the descriptor it belongs to.
                _memberships.Learn(membership.Span, known.Descriptor.Id, known.Descriptor.Endpoint, source);
                return;
            }

            descriptor = known.Descriptor;
        }
        else
        {
            // Field values, network parameters and times are checked before the signature.
            var error = NodeDescriptor.TryParse(encoded.Span, _node.Network, _time.GetUtcNow(), _options.OnionKeys.ClockSkew, out descriptor);
            if (error != DescriptorError.None)
            {
                Log.DescriptorRejected(_logger, source, error.Describe());
                return;
            }
        }

        if (!_directory.IsAdmitted(descriptor!.Id))
        {
            return;
        }

        // Private network: no valid membership, no proof, so the node is never dialed (the refusal is logged and counted there).
        if (_memberships.Learn(membership.Span, descriptor.Id, descriptor.Endpoint, source) != MembershipError.None
            || _directory.IsKnown(descriptor) || _cooldowns.IsCoolingDown(descriptor.Endpoint))
        {
            return;
        }

        // An endpoint the dial policy refuses (its scheme, an address literal) is dropped here, before it takes a prover's turn.
        if (_channels.Check(descriptor.Endpoint) is var refusal and not DialRefusal.None)
        {
            Log.DescriptorRejected(_logger, source, $"its endpoint {descriptor.Endpoint} is {refusal.Describe()}");
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
            catch (Exception exception) when (exception is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                // Last resort: a bug in one proof must not end this prover (the queue would starve).
                DirectoryLog.ProverFailed(_logger, exception);
                _cooldowns.Failed(descriptor.Endpoint);
            }
            catch (OperationCanceledException)
            {
                // Shutting down: this proof and what is left in the queue are dropped.
                DirectoryLog.ProofCutByShutdown(_logger, descriptor.Id.ToShortString());
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
        var dialed = new DialedAddress();
        try
        {
            using var channel = _channels.CreateTransient(endpoint, expected, dialed);
            var response = await new Protocol.V1.Link.LinkClient(channel)
                .ProveAsync(new ProofRequest { Challenge = ByteString.CopyFrom(challenge), Membership = OwnMembership() }, cancellationToken: timeout.Token);
            var error = NodeDescriptor.TryParse(response.SignedDescriptor.Span, _node.Network, _time.GetUtcNow(), _options.OnionKeys.ClockSkew, out var descriptor);
            if (error != DescriptorError.None)
            {
                return ProofFailed(endpoint, label, error.Describe());
            }

            if (descriptor!.Endpoint != endpoint || (expected is { } id && descriptor.Id != id))
            {
                return ProofFailed(endpoint, label, "the node at this endpoint has another identity or advertises another endpoint");
            }

            // Over TLS the connection itself proved an id: the descriptor must be that node's.
            if (dialed.Node is { } proven && proven != descriptor.Id)
            {
                return ProofFailed(endpoint, label, "the descriptor names another node than the link certificate proved");
            }

            if (!NodeIdentity.Verify(descriptor.Id, ProofMessage(challenge, response.SignedDescriptor.Span), response.Signature.Span))
            {
                return ProofFailed(endpoint, label, "bad proof signature");
            }

            // Private network: the node proves its membership too (a seed's, or a fresher one than gossip carried).
            if (_memberships.Learn(response.Membership.Span, descriptor.Id, descriptor.Endpoint, $"the proof of {label}") is var membership
                and not MembershipError.None)
            {
                return ProofFailed(endpoint, label, membership.Describe());
            }

            if (_directory.AddConfirmed(descriptor, dialed.Address))
            {
                _cooldowns.Succeeded(endpoint);
            }
            else
            {
                // Proved, but not admitted (policy, its block or the directory is full): gossip will
                // repeat it, so it waits like a failed proof.
                _cooldowns.Failed(endpoint);
            }

            return descriptor;
        }
        catch (Exception exception) when (exception is RpcException or OperationCanceledException or HttpRequestException)
        {
            if (stoppingToken.IsCancellationRequested)
            {
                return null;
            }

            return ProofFailed(endpoint, label, exception.Message);
        }
    }

    private NodeDescriptor? ProofFailed(Uri endpoint, string label, string reason)
    {
        Log.ProofFailed(_logger, label, reason);
        _cooldowns.Failed(endpoint);
        return null;
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
