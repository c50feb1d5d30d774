using System.Diagnostics;
using System.Reflection;

namespace Overlay.Bench.Fairness;

/// <summary>Starts this program again (the apphost, or <c>dotnet</c> with this assembly), optionally under a launcher such as <c>taskset</c>.</summary>
internal static class SelfProcess
{
    public static ProcessStartInfo StartInfo(string[] launcher, string[] args)
    {
        var processPath = Environment.ProcessPath ?? throw new InvalidOperationException("no process path");
        var self = Path.GetFileNameWithoutExtension(processPath) == "dotnet"
            ? [processPath, Assembly.GetEntryAssembly()!.Location]
            : new[] { processPath };
        string[] command = [.. launcher, .. self, .. args];
        var start = new ProcessStartInfo(command[0]) { UseShellExecute = false };
        foreach (var argument in command[1..])
        {
            start.ArgumentList.Add(argument);
        }

        return start;
    }
}
