using Microsoft.Extensions.Logging;

namespace Overlay.Testing.Logging;

/// <summary>One log entry of one node.</summary>
internal sealed record LogEntry(string Node, string Category, LogLevel Level, EventId EventId, string Message, Exception? Exception)
{
    /// <summary>Order of arrival in the sink.</summary>
    public long Sequence { get; init; }

    public override string ToString() =>
        $"[{Node}] {Level} {Category}[{EventId.Id}]: {Message}{(Exception is null ? "" : $" ({Exception.GetType().Name}: {Exception.Message})")}";
}
