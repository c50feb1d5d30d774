using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Overlay.Host.Control;
using Overlay.Host.Options;

namespace Overlay.Control.Tests;

/// <summary>The listener registry and dispatcher on their own: no node, no tunnel traffic.</summary>
public sealed class ListenerRegistryTests
{
    private static readonly ControlCaller Application = new(ControlRole.Application, "application");

    private static ListenerRegistry Registry(int startAt = 0) =>
        new(Microsoft.Extensions.Options.Options.Create(new OverlayOptions()), NullLogger<ListenerRegistry>.Instance, startAt);

    [Fact]
    public void Round_robin_keeps_going_past_two_to_the_31_offers()
    {
        var registry = Registry(startAt: int.MaxValue - 2);
        var first = registry.Register(Application)!;
        var second = registry.Register(Application)!;
        var picked = new List<ControlListener>();
        for (var i = 0; i < 6; i++)
        {
            picked.Add(registry.Pick()!);
        }

        // Alternates across the wrap, never the same listener twice in a row.
        Assert.All(picked.Zip(picked.Skip(1)), pair => Assert.NotSame(pair.First, pair.Second));
        Assert.Contains(first, picked);
        Assert.Contains(second, picked);
    }

    [Fact]
    public async Task A_taken_offer_whose_accept_never_finishes_is_released_when_the_tunnel_ends()
    {
        var registry = Registry();
        var listener = registry.Register(Application)!;
        var dispatcher = new ListenerDispatcher(registry, Microsoft.Extensions.Options.Options.Create(new OverlayOptions()), new FakeTimeProvider());
        using var tunnel = new CancellationTokenSource();
        // The dispatcher hands the tunnel on without touching it: none is needed to test the hand-off.
        var handling = dispatcher.HandleAsync(null!, service: null, tunnel.Token);

        using var deadline = TestTimeouts.After(30);
        var offer = await listener.Offers.ReadAsync(deadline.Token);
        Assert.True(offer.TryTake()); // an Accept call took it, then failed before it could say it was done

        await tunnel.CancelAsync(); // the tunnel's deadline passes, or its link ends
        var ended = await Task.WhenAny(handling, Task.Delay(Timeout.InfiniteTimeSpan, deadline.Token));
        Assert.Same(handling, ended);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => handling);
        Assert.Null(registry.Find(offer.Id));
    }
}
