namespace Overlay.Testing;

/// <summary>What a finished process printed.</summary>
/// <param name="ExitCode">Its exit code.</param>
/// <param name="Output">Standard output and standard error, interleaved as they arrived.</param>
/// <param name="ErrorOutput">Standard error alone.</param>
/// <param name="Elapsed">Its wall-clock time, for the test's log only.</param>
internal sealed record ProcessResult(int ExitCode, string Output, string ErrorOutput, TimeSpan Elapsed);
