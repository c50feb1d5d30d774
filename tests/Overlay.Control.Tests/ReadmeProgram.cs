using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Overlay.Client;

namespace Overlay.Control.Tests;

/// <summary>The README's example program, line for line between the markers, and the check that it still is.</summary>
internal static class ReadmeProgram
{
    public static async Task RunAsync(string[] args)
    {
        // README begin
        var (endpoint, tokenFile, destination) = (new Uri(args[0]), args[1], args[2]);
        using var services = new ServiceCollection()
            .AddOverlayClient(o => { o.Endpoint = endpoint; o.TokenFile = tokenFile; })
            .Services.BuildServiceProvider();
        var overlay = services.GetRequiredService<OverlayClient>();
        await using var tunnel = await overlay.OpenTunnelAsync(OverlayTarget.To(destination, relays: 3));
        await tunnel.WriteAsync("hello"u8.ToArray());
        await tunnel.CompleteWritingAsync();
        using var reply = new MemoryStream();
        await tunnel.CopyToAsync(reply);
        Console.WriteLine(Encoding.UTF8.GetString(reply.ToArray()));
        // README end
    }

    public static void AssertTheReadmeShowsIt() => AssertTheReadmeShows(ThisFile());

    private static string ThisFile([System.Runtime.CompilerServices.CallerFilePath] string path = "") => path;

    private static void AssertTheReadmeShows(string thisFile)
    {
        var program = Between(File.ReadAllLines(thisFile), "// README begin", "// README end");
        var readme = File.ReadAllLines(Path.Combine(Repo.Root, "README.md")).Select(l => l.Trim()).ToList();
        var start = readme.IndexOf(program[0]);
        Assert.True(start >= 0, "the README does not show the example program");
        Assert.Equal(program, readme.Skip(start).Take(program.Count));
    }

    private static List<string> Between(string[] lines, string begin, string end)
    {
        var from = Array.FindIndex(lines, l => l.Trim() == begin) + 1;
        var to = Array.FindIndex(lines, l => l.Trim() == end);
        return [.. lines[from..to].Select(l => l.Trim())];
    }
}
