using System.Buffers.Binary;
using System.Text;
using System.Text.Unicode;
using Overlay.Errors;

namespace Overlay.Host.Tunnels.Streams;

/// <summary>
/// The byte layout of stream frames inside a multiplexed route's end-to-end payload
/// (docs/protocol.md section 7.9): type (1), stream id (uint32), length (uint16), payload.
/// </summary>
internal static class StreamFrames
{
    /// <summary>
    /// The service a multiplexed route names in the header's deliver slot: only the destination reads
    /// it, and a destination that does not speak streams refuses it with DestinationRefused.
    /// </summary>
    public const string RouteService = "overlay/streams/1";

    /// <summary>Type, stream id and payload length.</summary>
    public const int HeaderSize = 7;

    /// <summary>The largest payload of one frame.</summary>
    public const int MaxPayload = 16 * 1024;

    /// <summary>The longest service name an Open frame carries (the header's deliver slot holds no more).</summary>
    public const int MaxServiceBytes = 32;

    public const int CreditSize = 4;

    /// <summary>
    /// Each stream's credit in each direction, fixed by the protocol so both ends agree without
    /// negotiating: a receiver buffers at most this much per stream.
    /// </summary>
    public const int Window = 64 * 1024;

    public static void WriteHeader(Span<byte> destination, StreamFrameType type, uint streamId, int length)
    {
        destination[0] = (byte)type;
        BinaryPrimitives.WriteUInt32BigEndian(destination[1..], streamId);
        BinaryPrimitives.WriteUInt16BigEndian(destination[5..], checked((ushort)length));
    }

    /// <summary>Writes an Open frame for <paramref name="service"/> (null = default); returns its size.</summary>
    public static int WriteOpen(Span<byte> destination, uint streamId, string? service)
    {
        var length = service is null ? 0 : Encoding.UTF8.GetBytes(service, destination[HeaderSize..]);
        WriteHeader(destination, StreamFrameType.Open, streamId, length);
        return HeaderSize + length;
    }

    public static int OpenSize(string? service) => HeaderSize + (service is null ? 0 : Encoding.UTF8.GetByteCount(service));

    public static int WriteReset(Span<byte> destination, uint streamId, TunnelErrorKind kind)
    {
        WriteHeader(destination, StreamFrameType.Reset, streamId, 1);
        destination[HeaderSize] = (byte)kind;
        return HeaderSize + 1;
    }

    public static int WriteCredit(Span<byte> destination, uint streamId, uint bytes)
    {
        WriteHeader(destination, StreamFrameType.Credit, streamId, CreditSize);
        BinaryPrimitives.WriteUInt32BigEndian(destination[HeaderSize..], bytes);
        return HeaderSize + CreditSize;
    }

    /// <summary>Reads an Open frame's service: null for the default; false when the name is not 1..32 bytes of UTF-8 without NUL.</summary>
    public static bool TryReadService(ReadOnlySpan<byte> payload, out string? service)
    {
        service = null;
        if (payload.IsEmpty)
        {
            return true;
        }

        if (payload.Length > MaxServiceBytes || payload.Contains((byte)0) || !Utf8.IsValid(payload))
        {
            return false;
        }

        service = Encoding.UTF8.GetString(payload);
        return true;
    }
}
