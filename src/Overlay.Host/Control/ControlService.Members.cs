using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Overlay.Host.Membership;
using Overlay.Membership;
using V1 = Overlay.Protocol.Control.V1;

namespace Overlay.Host.Control;

/// <summary>Private-network membership: list what this node knows; at an authority, admit and revoke.</summary>
internal sealed partial class ControlService
{
    public override Task<V1.ListMembersResponse> ListMembers(V1.ListMembersRequest request, ServerCallContext context)
    {
        var response = new V1.ListMembersResponse { PrivateNetwork = memberships.IsPrivate };
        if (memberships.Own is { } own)
        {
            response.Self = ToMember(own);
        }

        response.Members.AddRange(memberships.Members.OrderBy(m => m.Node.ToString(), StringComparer.Ordinal).Select(ToMember));
        response.Revocations.AddRange(memberships.Revocations.OrderBy(r => r.Node.ToString(), StringComparer.Ordinal).Select(ToRevocation));
        response.Admitted.AddRange(authority.Admitted.Select(id => id.ToString()).Order(StringComparer.Ordinal));
        return Task.FromResult(response);
    }

    public override Task<V1.AdmitMemberResponse> AdmitMember(V1.AdmitMemberRequest request, ServerCallContext context)
    {
        var id = ParseNodeId(request.NodeId, "node_id");
        return authority.Admit(id) switch
        {
            null => Task.FromResult(new V1.AdmitMemberResponse()),
            JoinRefusal.NotAnAuthority => throw NotAnAuthority(),
            var refusal => throw ControlErrors.Error(StatusCode.FailedPrecondition, refusal.Value.ToTag(),
                $"node {id.ToShortString()} is revoked until {memberships.RevocationOf(id)?.Until:o}: no authority admits it before then. Admit it again " +
                "after that, or give the machine a new identity (a new data directory) and admit that id now"),
        };
    }

    public override Task<V1.RevokeMemberResponse> RevokeMember(V1.RevokeMemberRequest request, ServerCallContext context)
    {
        var id = ParseNodeId(request.NodeId, "node_id");
        if (!authority.IsAuthority)
        {
            throw NotAnAuthority();
        }

        return Task.FromResult(new V1.RevokeMemberResponse { Revocation = ToRevocation(authority.Revoke(id)) });
    }

    private static RpcException NotAnAuthority() => ControlErrors.Error(StatusCode.FailedPrecondition, JoinRefusal.NotAnAuthority.ToTag(),
        "this node holds no authority key (Overlay:Membership:AuthorityKeyDirectory): admit and revoke at an authority");

    private static V1.Member ToMember(NodeMembership membership) => new()
    {
        NodeId = membership.Node.ToString(),
        Endpoint = membership.Endpoint.ToString(),
        Authority = membership.Authority.ToString(),
        NotBefore = Timestamp.FromDateTimeOffset(membership.NotBefore),
        NotAfter = Timestamp.FromDateTimeOffset(membership.NotAfter),
    };

    private static V1.MemberRevocation ToRevocation(MembershipRevocation revocation) => new()
    {
        NodeId = revocation.Node.ToString(),
        Authority = revocation.Authority.ToString(),
        RevokedAt = Timestamp.FromDateTimeOffset(revocation.RevokedAt),
        Until = Timestamp.FromDateTimeOffset(revocation.Until),
    };
}
