using Overlay.Host.Options;

namespace Overlay.Host.Tests.Options;

/// <summary>Every interval and timeout a node waits on is validated, and the message names its key.</summary>
public sealed class DurationOptionsTests
{
    public static TheoryData<string, Action<OverlayOptions, TimeSpan>> Durations() => new()
    {
        { "Overlay:Link:ConnectTimeout", (o, v) => o.Link.ConnectTimeout = v },
        { "Overlay:Link:KeepAlivePingDelay", (o, v) => o.Link.KeepAlivePingDelay = v },
        { "Overlay:Link:KeepAlivePingTimeout", (o, v) => o.Link.KeepAlivePingTimeout = v },
        { "Overlay:Directory:GossipInterval", (o, v) => o.Directory.GossipInterval = v },
        { "Overlay:Directory:CallTimeout", (o, v) => o.Directory.CallTimeout = v },
        { "Overlay:Directory:ForgetDownAfter", (o, v) => o.Directory.ForgetDownAfter = v },
        { "Overlay:Tunnels:DefaultDeadline", (o, v) => o.Tunnels.DefaultDeadline = v },
        { "Overlay:Tunnels:DrainTimeout", (o, v) => o.Tunnels.DrainTimeout = v },
        { "Overlay:Link:CertificateRotation", (o, v) => o.Link.CertificateRotation = v },
    };

    [Theory]
    [MemberData(nameof(Durations))]
    public void Zero_negative_and_endless_durations_are_refused_naming_the_key(string key, Action<OverlayOptions, TimeSpan> set)
    {
        Assert.False(new OverlayOptionsValidator().Validate(null, new OverlayOptions()).Failed);
        foreach (var value in new[] { TimeSpan.Zero, TimeSpan.FromSeconds(-1), TimeSpan.MaxValue })
        {
            var options = new OverlayOptions();
            set(options, value);

            var result = new OverlayOptionsValidator().Validate(null, options);

            Assert.True(result.Failed, $"{key} = {value} was accepted");
            Assert.Contains(result.Failures!, f => f.StartsWith(key, StringComparison.Ordinal));
        }
    }
}
