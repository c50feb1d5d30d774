using Microsoft.Extensions.Options;
using Overlay.Host.Options;
using Overlay.Onion;

namespace Overlay.Host.Replies;

/// <summary>Checks the <c>Overlay:Replies</c> section at start, naming the key to change.</summary>
internal sealed class ReplyOptionsValidator : IValidateOptions<OverlayOptions>
{
    public ValidateOptionsResult Validate(string? name, OverlayOptions options)
    {
        var failures = new List<string>();
        var replies = options.Replies;
        if (replies.MaxOutstanding is < 1 or > 65_536)
        {
            failures.Add($"Overlay:Replies:MaxOutstanding must be between 1 and 65536, not {replies.MaxOutstanding}");
        }

        if (!(replies.MaxLifetime >= TimeSpan.FromSeconds(1) && replies.MaxLifetime <= TimeSpan.FromDays(7)))
        {
            failures.Add($"Overlay:Replies:MaxLifetime must be between 1 second and 7 days, not {replies.MaxLifetime}");
        }

        if (replies.MaxReplyBytes is < 1 or > 16 << 20)
        {
            failures.Add($"Overlay:Replies:MaxReplyBytes must be between 1 and {16 << 20}, not {replies.MaxReplyBytes}");
        }

        if (!(replies.ReplyDeadline > TimeSpan.Zero && replies.ReplyDeadline <= TimeSpan.FromHours(6)))
        {
            failures.Add($"Overlay:Replies:ReplyDeadline must be above zero and at most 6 hours, not {replies.ReplyDeadline}");
        }
        else if (options.Network.ToParameters() is var network && network.Validate() is null && DeadlineClasses.FromTimeSpan(replies.ReplyDeadline) > network.MaxDeadlineClass)
        {
            failures.Add($"Overlay:Replies:ReplyDeadline ({replies.ReplyDeadline}) must fit Overlay:Network:MaxDeadlineClass ({network.MaxDeadlineClass.ToTimeSpan()})");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
