namespace Overlay.Host.Tunnels.Streams;

/// <summary>The frames of a multiplexed route (docs/protocol.md section 7.9); the value is the wire byte.</summary>
internal enum StreamFrameType : byte
{
    /// <summary>Origin to destination only: a new stream to the named service (payload: the name, empty for the default).</summary>
    Open = 1,

    /// <summary>Stream bytes, 1..MaxFramePayload of them.</summary>
    Data = 2,

    /// <summary>The sender's direction of the stream ended (no payload).</summary>
    End = 3,

    /// <summary>The stream is over in both directions (payload: one error code of section 8).</summary>
    Reset = 4,

    /// <summary>The receiver consumed bytes: the sender may send that many more (payload: uint32).</summary>
    Credit = 5,
}
