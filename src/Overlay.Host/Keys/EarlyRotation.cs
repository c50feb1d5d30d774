using Overlay.Onion;

namespace Overlay.Host.Keys;

/// <summary>What an early-rotation request got: when the key will rotate, and the rotation itself.</summary>
/// <param name="Current">The epoch current when the request was made.</param>
/// <param name="At">
/// When the rotation happens: now, unless the last rotation was less than
/// <c>Overlay:OnionKeys:MinEarlyRotationInterval</c> ago (or the scheduled expiry comes first).
/// </param>
/// <param name="Rotated">Completes with the new epoch once it is published; cancelled if the node stops first.</param>
internal sealed record EarlyRotation(OnionKeyEpoch Current, DateTimeOffset At, Task<OnionKeyEpoch> Rotated);
