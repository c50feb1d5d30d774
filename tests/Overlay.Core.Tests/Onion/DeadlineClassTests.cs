using Overlay.Onion;

namespace Overlay.Tests.Onion;

public sealed class DeadlineClassTests
{
    private static readonly DeadlineClass[] All = Enum.GetValues<DeadlineClass>();

    [Fact]
    public void The_classes_are_strictly_increasing_and_all_defined()
    {
        Assert.Equal(8, All.Length);
        Assert.All(All, c => Assert.True(DeadlineClasses.IsDefined(c)));
        Assert.False(DeadlineClasses.IsDefined((DeadlineClass)8));
        Assert.False(DeadlineClasses.IsDefined((DeadlineClass)255));
        for (var i = 1; i < All.Length; i++)
        {
            Assert.True(All[i].ToTimeSpan() > All[i - 1].ToTimeSpan());
        }

        Assert.Equal(TimeSpan.FromSeconds(5), DeadlineClass.Seconds5.ToTimeSpan());
        Assert.Equal(TimeSpan.FromHours(6), DeadlineClass.Hours6.ToTimeSpan());
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void FromTimeSpan_picks_the_smallest_class_at_least_as_long_as_requested(int seed)
    {
        var random = new Random(seed);
        var longest = All[^1].ToTimeSpan();
        var requests = All.SelectMany(c => new[] { c.ToTimeSpan(), c.ToTimeSpan() - TimeSpan.FromTicks(1), c.ToTimeSpan() + TimeSpan.FromTicks(1) })
            .Concat(Enumerable.Range(0, 500).Select(_ => TimeSpan.FromTicks(random.NextInt64(-TimeSpan.TicksPerMinute, 2 * longest.Ticks))))
            .Append(TimeSpan.Zero).Append(TimeSpan.MinValue).Append(TimeSpan.MaxValue);

        foreach (var requested in requests)
        {
            var chosen = DeadlineClasses.FromTimeSpan(requested);
            var candidates = All.Where(c => c.ToTimeSpan() >= requested).ToArray();
            if (candidates.Length == 0)
            {
                Assert.Equal(DeadlineClass.Hours6, chosen); // nothing is long enough: the longest
                continue;
            }

            Assert.True(chosen.ToTimeSpan() >= requested, $"{requested} -> {chosen}");
            Assert.All(candidates, c => Assert.True(c.ToTimeSpan() >= chosen.ToTimeSpan(), $"{requested}: {c} is smaller than {chosen}"));
        }
    }

    [Fact]
    public void FromTimeSpan_examples()
    {
        Assert.Equal(DeadlineClass.Seconds5, DeadlineClasses.FromTimeSpan(TimeSpan.Zero));
        Assert.Equal(DeadlineClass.Seconds5, DeadlineClasses.FromTimeSpan(TimeSpan.FromSeconds(5)));
        Assert.Equal(DeadlineClass.Seconds15, DeadlineClasses.FromTimeSpan(TimeSpan.FromSeconds(5.001)));
        Assert.Equal(DeadlineClass.Minute1, DeadlineClasses.FromTimeSpan(TimeSpan.FromSeconds(31)));
        Assert.Equal(DeadlineClass.Hours6, DeadlineClasses.FromTimeSpan(TimeSpan.FromHours(7)));
    }
}
