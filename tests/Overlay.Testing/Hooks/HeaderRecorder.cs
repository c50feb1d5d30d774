using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;

namespace Overlay.Testing.Hooks;

/// <summary>One incoming request as a node's middleware saw it.</summary>
internal sealed record RecordedRequest(string Node, string Path, IReadOnlyDictionary<string, string> Headers);

/// <summary>
/// Middleware, added through <see cref="OverlayNodeSettings.ConfigureApplication"/>, that records
/// every incoming request's path and headers on each node (for the link-privacy test).
/// </summary>
internal sealed class HeaderRecorder
{
    private readonly ConcurrentQueue<RecordedRequest> _requests = new();

    /// <summary>While false, nothing is recorded (most tests do not need it).</summary>
    public bool Enabled { get; set; }

    public IReadOnlyList<RecordedRequest> Requests => [.. _requests];

    public void Clear() => _requests.Clear();

    public void Install(WebApplication app, string node) => app.Use(next => context =>
    {
        if (Enabled)
        {
            var headers = context.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase);
            _requests.Enqueue(new RecordedRequest(node, context.Request.Path.Value ?? "", headers));
        }

        return next(context);
    });
}
