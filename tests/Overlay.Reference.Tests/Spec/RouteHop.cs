namespace Overlay.Reference.Spec;

/// <summary>One hop of a route as the origin knows it (from the hop's descriptor).</summary>
internal sealed record RouteHop(byte[] NodeId, uint Epoch, byte[] OnionPublicKey);
