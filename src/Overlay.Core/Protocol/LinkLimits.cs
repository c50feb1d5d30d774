using Google.Protobuf;
using Overlay.Onion;

namespace Overlay.Protocol;

/// <summary>Sizes of link messages as encoded on the wire, protobuf framing included.</summary>
public static class LinkLimits
{
    /// <summary>The encoded size of a link message carrying <paramref name="headerBytes"/> of header and <paramref name="cellBytes"/> of cells.</summary>
    public static int MessageSize(int headerBytes, int cellBytes) => FieldSize(headerBytes) + FieldSize(cellBytes);

    /// <summary>The largest link message a node sends: the header with <paramref name="maxCellsPerMessage"/> cells (a short request travels that way).</summary>
    public static int LargestMessage(NetworkParameters parameters, int maxCellsPerMessage) =>
        MessageSize(OnionHeader.SizeFor(parameters), parameters.CellSize * maxCellsPerMessage);

    // A length-delimited field: a one-byte tag (fields 1 and 2), the length as a varint, the bytes; absent when empty.
    private static int FieldSize(int length) => length == 0 ? 0 : 1 + CodedOutputStream.ComputeLengthSize(length) + length;
}
