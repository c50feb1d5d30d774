namespace Overlay.Reference.Spec;

/// <summary>
/// What the origin makes of a backward cell (docs/protocol.md 7.4): a cell of the destination's, an
/// error reported by hop <see cref="ReportedBy"/> and attributed to <see cref="AttributedTo"/>, or a
/// refusal (<see cref="Violation"/>: a section 8 code).
/// </summary>
internal sealed record BackwardReading(byte Type, byte[] Payload, int ReportedBy, int AttributedTo = 0, int ErrorCode = 0, int Violation = 0);
