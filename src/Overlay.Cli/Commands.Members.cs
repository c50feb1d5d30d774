using System.CommandLine;
using Grpc.Core;
using Overlay.Protocol.Control.V1;

namespace Overlay.Cli;

/// <summary><c>overlay members list|admit|revoke</c>: private-network membership.</summary>
internal sealed partial class Commands
{
    /// <summary>Adds the <c>members</c> verb and its subcommands to <paramref name="root"/>.</summary>
    public static void AddMembers(RootCommand root, Commands commands, GlobalOptions o)
    {
        var members = new Command("members", "List this node's membership and the members and revocations it knows (private networks).");
        members.SetAction(commands.MembersAsync);
        var list = new Command("list", "The same as 'members'.");
        list.SetAction(commands.MembersAsync);
        var admit = new Command("admit", "At an authority: let a node id join without a token.");
        admit.Arguments.Add(o.NodeId);
        admit.SetAction(commands.AdmitMemberAsync);
        var revoke = new Command("revoke", "At an authority: revoke a node id; the revocation spreads by gossip and closes its links.");
        revoke.Arguments.Add(o.NodeId);
        revoke.SetAction(commands.RevokeMemberAsync);
        members.Subcommands.Add(list);
        members.Subcommands.Add(admit);
        members.Subcommands.Add(revoke);
        root.Subcommands.Add(members);
    }

    public Task<int> MembersAsync(ParseResult parse, CancellationToken token) => RunAsync(parse, async client =>
    {
        var members = await MemberCallAsync(client.Api.ListMembersAsync(new ListMembersRequest(), cancellationToken: token));
        if (!Print(parse, members))
        {
            if (!members.PrivateNetwork)
            {
                io.Out.WriteLine("open network: no authorities, every node may join");
                return ExitCodes.Ok;
            }

            io.Out.WriteLine(members.Self is { } self ? $"this node: member until {Time(self.NotAfter)} (authority {self.Authority[..8]})" : "this node: no valid membership");
            Table(["NODE ID", "ENDPOINT", "AUTHORITY", "VALID UNTIL"],
                members.Members.Select(m => new[] { m.NodeId, m.Endpoint, m.Authority[..8], Time(m.NotAfter) }));
            foreach (var revocation in members.Revocations)
            {
                io.Out.WriteLine($"revoked: {revocation.NodeId} since {Time(revocation.RevokedAt)} (kept until {Time(revocation.Until)})");
            }

            foreach (var admitted in members.Admitted)
            {
                io.Out.WriteLine($"admitted without a token: {admitted}");
            }
        }

        return ExitCodes.Ok;
    }, token);

    public Task<int> AdmitMemberAsync(ParseResult parse, CancellationToken token) => RunAsync(parse, async client =>
    {
        var id = parse.GetValue(o.NodeId)!;
        var admitted = await MemberCallAsync(client.Api.AdmitMemberAsync(new AdmitMemberRequest { NodeId = id }, cancellationToken: token));
        if (!Print(parse, admitted))
        {
            io.Out.WriteLine($"admitted {id}: it may join through this authority without a token");
        }

        return ExitCodes.Ok;
    }, token);

    public Task<int> RevokeMemberAsync(ParseResult parse, CancellationToken token) => RunAsync(parse, async client =>
    {
        var id = parse.GetValue(o.NodeId)!;
        var revoked = await MemberCallAsync(client.Api.RevokeMemberAsync(new RevokeMemberRequest { NodeId = id }, cancellationToken: token));
        if (!Print(parse, revoked))
        {
            io.Out.WriteLine($"revoked {id}; the revocation is kept until {Time(revoked.Revocation.Until)}");
        }

        return ExitCodes.Ok;
    }, token);

    // These calls go through the raw API: a refusal is named by its status and overlay-reason trailer.
    private static async Task<T> MemberCallAsync<T>(AsyncUnaryCall<T> call)
    {
        using (call)
        {
            try
            {
                return await call.ResponseAsync;
            }
            catch (RpcException exception)
            {
                var reason = exception.Trailers.GetValue("overlay-reason") ?? exception.StatusCode.ToString();
                var code = exception.StatusCode switch
                {
                    StatusCode.Unauthenticated or StatusCode.PermissionDenied => ExitCodes.Auth,
                    StatusCode.NotFound => ExitCodes.NotFound,
                    StatusCode.Unavailable => ExitCodes.Unavailable,
                    StatusCode.InvalidArgument => ExitCodes.Usage,
                    _ => ExitCodes.Failed,
                };
                throw new CliException(code, $"{reason}: {exception.Status.Detail}");
            }
        }
    }
}
