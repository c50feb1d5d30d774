namespace Overlay.Testing.Hooks;

/// <summary>
/// Request headers no link call may carry (guarantees 2 and 10 of docs/protocol.md): each would let
/// the hops of one tunnel be tied together, or tell a hop where it sits on the route. One list for
/// every test that looks at link headers.
/// </summary>
internal static class ForbiddenLinkHeaders
{
    public static IReadOnlyList<string> Names { get; } =
    [
        // W3C trace context and baggage: one trace id or value seen by every hop.
        "traceparent",
        "tracestate",
        "baggage",

        // The older .NET propagation (hierarchical Request-Id and its baggage), still emitted by HttpClient when asked.
        "Request-Id",
        "Correlation-Context",

        // The origin's remaining deadline: it shrinks hop by hop, so it tells a hop how far it is from the origin.
        "grpc-timeout",

        // A retried call tells the next hop it is a retry of an earlier one, linking the two attempts.
        "grpc-previous-rpc-attempts",
    ];

    /// <summary>The forbidden names among <paramref name="headers"/>, in any case.</summary>
    public static IEnumerable<string> In(IEnumerable<string> headers) =>
        headers.Where(header => Names.Contains(header, StringComparer.OrdinalIgnoreCase));
}
