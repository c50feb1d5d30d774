namespace Overlay.Cli;

/// <summary>A failure with its exit code and a message that says what to do.</summary>
public sealed class CliException(int exitCode, string message) : Exception(message)
{
    /// <summary>The process exit code.</summary>
    public int ExitCode { get; } = exitCode;
}
