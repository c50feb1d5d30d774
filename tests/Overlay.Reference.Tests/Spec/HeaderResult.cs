namespace Overlay.Reference.Spec;

/// <summary>What a hop did with a header (docs/protocol.md 6.2): the error code of section 8, or relay or deliver.</summary>
internal sealed record HeaderResult(int Error, HopSecrets? Secrets = null, byte[]? Slot = null, byte[]? NextHeader = null)
{
    public bool IsRelay => Error == 0 && Slot![0] == Wire.Relay;

    public bool IsDeliver => Error == 0 && Slot![0] == Wire.Deliver;

    public byte Mode => Slot![1];

    public byte Deadline => Slot![2];

    public byte[] NextId => Slot![8..40];

    /// <summary>The reply id of a reply-block deliver slot (section 7.8).</summary>
    public byte[] ReplyId => Slot![36..52];

    /// <summary>The service name of a deliver slot: the bytes before the first zero ("" for the default service).</summary>
    public string Service
    {
        get
        {
            var name = Slot.AsSpan(4, 32);
            var end = name.IndexOf((byte)0);
            return System.Text.Encoding.UTF8.GetString(end < 0 ? name : name[..end]);
        }
    }

    public static HeaderResult Refused(int error) => new(error);
}
