using Overlay.Identity;

namespace Overlay.Onion;

/// <summary>One hop of a route as the origin knows it: who, and which onion key (epoch) to build for.</summary>
public readonly record struct RouteHop(NodeId Id, uint Epoch, ReadOnlyMemory<byte> OnionPublicKey);
