using System.Text;

namespace Overlay.Cli;

/// <summary>The CLI's standard streams: binary stdin and stdout (for tunnel data), text on both.</summary>
public sealed class CliIO
{
    /// <summary>Standard input, binary.</summary>
    public required Stream Input { get; init; }

    /// <summary>Standard output, binary.</summary>
    public required Stream Output { get; init; }

    /// <summary>Standard error.</summary>
    public required TextWriter Error { get; init; }

    /// <summary>True when standard error is a terminal: progress bars go there.</summary>
    public bool Interactive { get; init; }

    /// <summary>Text written to standard output (flushed before any binary write).</summary>
    public TextWriter Out => _out ??= new StreamWriter(Output, new UTF8Encoding(false), 4096, leaveOpen: true) { AutoFlush = true, NewLine = "\n" };

    private StreamWriter? _out;

    /// <summary>The process's own streams.</summary>
    public static CliIO System() => new()
    {
        Input = Console.OpenStandardInput(),
        Output = Console.OpenStandardOutput(),
        Error = Console.Error,
        Interactive = !Console.IsErrorRedirected,
    };
}
