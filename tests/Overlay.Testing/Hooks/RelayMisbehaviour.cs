using Overlay.Testing.Cluster;

namespace Overlay.Testing.Hooks;

/// <summary>What a test makes a node of a <see cref="TestCluster"/> do wrong on its incoming tunnel hops.</summary>
internal enum RelayMisbehaviour
{
    /// <summary>Honest: the node's own relay and destination code runs.</summary>
    None,

    /// <summary>Reads the whole request, forwards nothing, and ends the call normally (status OK).</summary>
    SwallowAndEnd,

    /// <summary>Ends every incoming hop at once with Unavailable and no reason, as an unreachable node looks.</summary>
    Refuse,

    /// <summary>
    /// Honest, but reads nothing after a hop's first message until <see cref="Misbehaviours.Release"/>: what
    /// the predecessor sends meanwhile waits, already received, in the hop's buffers.
    /// </summary>
    HoldAfterFirstMessage,
}
