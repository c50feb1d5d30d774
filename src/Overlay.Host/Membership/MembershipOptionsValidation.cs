using Overlay.Host.Options;
using Overlay.Identity;

namespace Overlay.Host.Membership;

/// <summary>Validates <c>Overlay:Membership</c>, each failure naming its key.</summary>
internal static class MembershipOptionsValidation
{
    public const int MinTokenLength = 32;
    public const int MaxTokenLength = 256;

    public static void Validate(OverlayOptions options, List<string> failures)
    {
        var membership = options.Membership;
        var isPrivate = options.Network.Authorities.Count > 0;
        if (!(membership.Lifetime >= TimeSpan.FromMinutes(10) && membership.Lifetime <= Overlay.Membership.NodeMembership.MaxValidity))
        {
            failures.Add($"Overlay:Membership:Lifetime must be between 10 minutes and {Overlay.Membership.NodeMembership.MaxValidity.TotalDays} days, not {membership.Lifetime}");
        }

        if (membership.RetryInterval <= TimeSpan.Zero)
        {
            failures.Add("Overlay:Membership:RetryInterval must be positive");
        }

        if (membership.AuthorityKeyDirectory is not null && !isPrivate)
        {
            failures.Add("Overlay:Membership:AuthorityKeyDirectory needs Overlay:Network:Authorities (with this authority's key)");
        }

        for (var i = 0; i < membership.Tokens.Count; i++)
        {
            var token = membership.Tokens[i];
            var key = $"Overlay:Membership:Tokens:{i}";
            if (token.Value.Length is < MinTokenLength or > MaxTokenLength)
            {
                failures.Add($"{key}:Value must be {MinTokenLength} to {MaxTokenLength} characters");
            }

            if (token.Uses < 1)
            {
                failures.Add($"{key}:Uses must be at least 1");
            }

            if (token.ExpiresAt == default)
            {
                failures.Add($"{key}:ExpiresAt must be set");
            }

            if (token.NodeId is not null && !NodeId.TryParse(token.NodeId, out _))
            {
                failures.Add($"{key}:NodeId '{token.NodeId}' is not a 64-hex-digit node id");
            }
        }

        if (membership.Tokens.Count > 0 && membership.AuthorityKeyDirectory is null)
        {
            failures.Add("Overlay:Membership:Tokens are accepted only by an authority (Overlay:Membership:AuthorityKeyDirectory)");
        }

        if (membership.JoinUrl is not null)
        {
            if (!isPrivate)
            {
                failures.Add("Overlay:Membership:JoinUrl needs Overlay:Network:Authorities");
            }

            if (!Uri.TryCreate(membership.JoinUrl, UriKind.Absolute, out var url) || url.Scheme != Uri.UriSchemeHttps || !NodeDescriptor.IsEndpointForm(url))
            {
                failures.Add($"Overlay:Membership:JoinUrl must be https://host:port, not '{membership.JoinUrl}'");
            }

            if (!NodeId.TryParse(membership.JoinNodeId, out _))
            {
                failures.Add("Overlay:Membership:JoinNodeId must be the authority node's id (64 hex digits): the joining node checks it first");
            }
        }
    }
}
