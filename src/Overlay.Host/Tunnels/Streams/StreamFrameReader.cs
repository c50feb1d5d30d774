using System.Buffers;
using System.Buffers.Binary;
using Overlay.Errors;

namespace Overlay.Host.Tunnels.Streams;

/// <summary>
/// Cuts a route's payload byte stream into frames. A frame may span cells; its payload is valid
/// until the next <see cref="NextAsync"/>. Every length is checked before it is used, and a frame
/// that breaks the layout ends the route as a <see cref="TunnelErrorKind.ProtocolViolation"/> of
/// <c>peerHop</c> (the hop that sealed it: the destination at the origin, 0 at the destination).
/// </summary>
internal sealed class StreamFrameReader(Func<Memory<byte>, CancellationToken, ValueTask<int>> read, int peerHop) : IDisposable
{
    private byte[] _buffer = ArrayPool<byte>.Shared.Rent(2 * (StreamFrames.HeaderSize + StreamFrames.MaxPayload));
    private int _start;
    private int _end;

    public StreamFrameType Type { get; private set; }

    public uint StreamId { get; private set; }

    public ReadOnlyMemory<byte> Payload { get; private set; }

    /// <summary>True when the next frame is already here whole: <see cref="NextAsync"/> returns it without waiting.</summary>
    public bool HasWholeFrame
    {
        get
        {
            var available = _end - _start;
            return available >= StreamFrames.HeaderSize
                && available >= StreamFrames.HeaderSize + BinaryPrimitives.ReadUInt16BigEndian(_buffer.AsSpan(_start + 5, 2));
        }
    }

    /// <summary>The next frame; false at the route's authenticated end (never inside a frame).</summary>
    public async ValueTask<bool> NextAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var available = _end - _start;
            if (available >= StreamFrames.HeaderSize)
            {
                var header = _buffer.AsSpan(_start, StreamFrames.HeaderSize);
                var type = (StreamFrameType)header[0];
                var streamId = BinaryPrimitives.ReadUInt32BigEndian(header[1..]);
                var length = BinaryPrimitives.ReadUInt16BigEndian(header[5..]);
                if (type is < StreamFrameType.Open or > StreamFrameType.Credit || streamId == 0 || length > StreamFrames.MaxPayload)
                {
                    throw Violation($"a stream frame of type {(byte)type}, stream {streamId}, length {length}");
                }

                if (available >= StreamFrames.HeaderSize + length)
                {
                    (Type, StreamId) = (type, streamId);
                    Payload = _buffer.AsMemory(_start + StreamFrames.HeaderSize, length);
                    _start += StreamFrames.HeaderSize + length;
                    return true;
                }
            }

            if (_buffer.Length - _end < StreamFrames.HeaderSize + StreamFrames.MaxPayload)
            {
                _buffer.AsSpan(_start, available).CopyTo(_buffer);
                (_start, _end) = (0, available);
            }

            var read1 = await read(_buffer.AsMemory(_end), cancellationToken);
            if (read1 == 0)
            {
                return available == 0 ? false : throw Violation("the route ended inside a stream frame");
            }

            _end += read1;
        }
    }

    public TunnelException Violation(string what) => new(TunnelErrorKind.ProtocolViolation, peerHop, $"stream framing: {what}");

    public void Dispose()
    {
        var buffer = Interlocked.Exchange(ref _buffer, []);
        if (buffer.Length != 0)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
