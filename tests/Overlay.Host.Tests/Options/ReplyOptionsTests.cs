using Overlay.Host.Options;
using Overlay.Host.Replies;

namespace Overlay.Host.Tests.Options;

/// <summary>Every Overlay:Replies limit is validated, and the message names its key.</summary>
public sealed class ReplyOptionsTests
{
    public static TheoryData<string, Action<ReplyOptions>> Refused() => new()
    {
        { "Overlay:Replies:MaxOutstanding", o => o.MaxOutstanding = 0 },
        { "Overlay:Replies:MaxOutstanding", o => o.MaxOutstanding = 65_537 },
        { "Overlay:Replies:MaxLifetime", o => o.MaxLifetime = TimeSpan.Zero },
        { "Overlay:Replies:MaxLifetime", o => o.MaxLifetime = TimeSpan.FromDays(8) },
        { "Overlay:Replies:MaxReplyBytes", o => o.MaxReplyBytes = 0 },
        { "Overlay:Replies:MaxReplyBytes", o => o.MaxReplyBytes = (16 << 20) + 1 },
        { "Overlay:Replies:ReplyDeadline", o => o.ReplyDeadline = TimeSpan.Zero },
        { "Overlay:Replies:ReplyDeadline", o => o.ReplyDeadline = TimeSpan.MaxValue },
    };

    [Theory]
    [MemberData(nameof(Refused))]
    public void Out_of_range_reply_limits_are_refused_naming_the_key(string key, Action<ReplyOptions> set)
    {
        Assert.False(new ReplyOptionsValidator().Validate(null, new OverlayOptions()).Failed);
        var options = new OverlayOptions();
        set(options.Replies);

        var result = new ReplyOptionsValidator().Validate(null, options);

        Assert.True(result.Failed, $"{key} was accepted");
        Assert.Contains(result.Failures!, f => f.StartsWith(key, StringComparison.Ordinal));
    }

    [Fact]
    public void A_reply_deadline_beyond_the_networks_cap_is_refused_naming_both_keys()
    {
        var options = new OverlayOptions();
        options.Network.MaxDeadlineClass = Onion.DeadlineClass.Seconds15;
        options.Replies.ReplyDeadline = TimeSpan.FromSeconds(30);

        var failure = Assert.Single(new ReplyOptionsValidator().Validate(null, options).Failures!);

        Assert.Contains("Overlay:Replies:ReplyDeadline", failure, StringComparison.Ordinal);
        Assert.Contains("Overlay:Network:MaxDeadlineClass", failure, StringComparison.Ordinal);
    }
}
