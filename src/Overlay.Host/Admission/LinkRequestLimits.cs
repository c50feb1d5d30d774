using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Overlay.Errors;
using Overlay.Host.Link;
using Overlay.Host.Options;

namespace Overlay.Host.Admission;

/// <summary>
/// Small receive limits for the Link service's unary calls: an exchange carries at most
/// <c>MaxDescriptorsPerExchange</c> descriptors and our own, a proof request a 32-byte challenge.
/// The link's message limit is sized for tunnel messages (tens of KiB); these calls get theirs, and
/// reading stops as soon as more has arrived (ResourceExhausted, LimitExceeded), so no more than
/// the limit plus one read is ever buffered.
/// </summary>
internal static class LinkRequestLimits
{
    private static readonly string ServicePath = "/" + Protocol.V1.Link.Descriptor.FullName + "/";
    private static readonly string ExchangePath = ServicePath + "Exchange";
    private static readonly string ProvePath = ServicePath + "Prove";
    private static readonly string JoinPath = ServicePath + "Join";

    /// <summary>A join request: a token, a descriptor and a membership, each with field framing, in one gRPC frame.</summary>
    public const int JoinRequestBytes = 5 + (3 + Membership.MembershipOptionsValidation.MaxTokenLength) + (3 + Identity.NodeDescriptor.MaxSize) + (3 + Overlay.Membership.NodeMembership.MaxSize);

    /// <summary>
    /// A proof request: the 32-byte challenge with its field tag and length, in one gRPC frame, with
    /// room to spare; in a private network the caller's membership too.
    /// </summary>
    public static int ProveRequestBytes(OverlayOptions options) => 64 + MembershipField(options);

    /// <summary>
    /// An exchange request: our descriptor and the most descriptors an exchange carries, each with
    /// its field framing (and in a private network its membership), in one gRPC frame.
    /// </summary>
    public static int ExchangeRequestBytes(OverlayOptions options) =>
        5 + ((options.Directory.MaxDescriptorsPerExchange + 1) * (Identity.NodeDescriptor.MaxSize + 3 + MembershipField(options)))
        + (options.Network.Authorities.Count > 0 ? Directory.DirectoryService.MaxRevocationsPerExchange * (Overlay.Membership.MembershipRevocation.Size + 3) : 0);

    // A membership with its field tag and a two-byte length: only a private network sends them.
    private static int MembershipField(OverlayOptions options) =>
        options.Network.Authorities.Count > 0 ? Overlay.Membership.NodeMembership.MaxSize + 3 : 0;

    public static void UseLinkRequestLimits(this WebApplication app)
    {
        var options = app.Services.GetRequiredService<IOptions<OverlayOptions>>().Value;
        var admission = app.Services.GetRequiredService<LinkAdmission>();
        var exchange = ExchangeRequestBytes(options);
        var prove = ProveRequestBytes(options);
        app.Use((context, next) =>
        {
            var path = context.Request.Path.Value;
            var limit = string.Equals(path, ExchangePath, StringComparison.Ordinal) ? exchange
                : string.Equals(path, ProvePath, StringComparison.Ordinal) ? prove
                : string.Equals(path, JoinPath, StringComparison.Ordinal) ? JoinRequestBytes
                : 0;
            if (limit != 0 && context.Features.Get<IRequestBodyPipeFeature>() is { } body)
            {
                var source = PeerAddress.FairnessKey(context.Connection.RemoteIpAddress);
                context.Features.Set<IRequestBodyPipeFeature>(new BoundedBody(new BoundedPipeReader(body.Reader, limit, () => admission.Refused(source, AdmissionLimits.RequestSize))));
            }

            return next(context);
        });
    }

    private sealed class BoundedBody(PipeReader reader) : IRequestBodyPipeFeature
    {
        public PipeReader Reader { get; } = reader;
    }

    /// <summary>Fails the read once a frame declares, or more than <c>limit</c> unconsumed bytes bring, more than the limit.</summary>
    private sealed class BoundedPipeReader(PipeReader inner, long limit, Action onExceeded) : PipeReader
    {
        public override void AdvanceTo(SequencePosition consumed) => inner.AdvanceTo(consumed);

        public override void AdvanceTo(SequencePosition consumed, SequencePosition examined) => inner.AdvanceTo(consumed, examined);

        public override void CancelPendingRead() => inner.CancelPendingRead();

        public override void Complete(Exception? exception = null) => inner.Complete(exception);

        public override async ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default) => Check(await inner.ReadAsync(cancellationToken));

        public override bool TryRead(out ReadResult result)
        {
            if (!inner.TryRead(out result))
            {
                return false;
            }

            result = Check(result);
            return true;
        }

        private ReadResult Check(ReadResult result)
        {
            if (result.Buffer.Length > limit || DeclaredFrame(result.Buffer) > limit)
            {
                inner.AdvanceTo(result.Buffer.Start, result.Buffer.End);
                onExceeded();
                throw LinkErrors.Refuse(TunnelErrorKind.LimitExceeded);
            }

            return result;
        }

        // The gRPC frame's length prefix (1 flag byte, 4 bytes big-endian) plus the prefix itself, once it has arrived.
        private static long DeclaredFrame(in ReadOnlySequence<byte> buffer)
        {
            if (buffer.Length < 5)
            {
                return 0;
            }

            Span<byte> prefix = stackalloc byte[5];
            buffer.Slice(0, 5).CopyTo(prefix);
            return 5L + BinaryPrimitives.ReadUInt32BigEndian(prefix[1..]);
        }
    }
}
