using System.Buffers.Binary;
using System.Text;
using Overlay.Identity;

namespace Overlay.Tests.Identity;

/// <summary>
/// Writes descriptor bytes field by field from the documented layout, independently of
/// <see cref="NodeDescriptor"/>, and signs them by hand, so tests can produce validly signed
/// descriptors that <see cref="NodeDescriptor.Create"/> would never write.
/// </summary>
internal sealed class RawDescriptor
{
    public static readonly DateTimeOffset T0 = DateTimeOffset.FromUnixTimeSeconds(1_760_000_000);

    public RawDescriptor(NodeIdentity signer, OnionKey onionKey)
    {
        Signer = signer;
        NodeId = signer.Id.AsSpan().ToArray();
        OnionKey = onionKey.PublicKey.ToArray();
        Epoch = onionKey.Epoch;
        ValidFrom = onionKey.ValidFrom.ToUnixTimeSeconds();
        ExpiresAt = onionKey.ExpiresAt.ToUnixTimeSeconds();
    }

    public NodeIdentity Signer { get; }

    public byte FormatVersion { get; set; } = 1;

    public byte[] NodeId { get; set; }

    public byte[] OnionKey { get; set; }

    public uint Epoch { get; set; }

    public long ValidFrom { get; set; }

    public long ExpiresAt { get; set; }

    public long PublishedAt { get; set; } = T0.ToUnixTimeSeconds();

    public byte[] Versions { get; set; } = [1];

    public uint Features { get; set; }

    public ushort MaxRelays { get; set; } = 32;

    public uint CellSize { get; set; } = 4096;

    public byte Construction { get; set; } = 1;

    public byte MaxDeadlineClass { get; set; } = 7;

    public ushort IdleTimeoutSeconds { get; set; } = 120;

    public byte[] Endpoint { get; set; } = Encoding.UTF8.GetBytes("https://node.example:5001/");

    public byte[] Encode()
    {
        var bytes = new List<byte> { FormatVersion };
        bytes.AddRange(NodeId);
        bytes.AddRange(OnionKey);
        bytes.AddRange(BigEndian(Epoch));
        bytes.AddRange(BigEndian(ValidFrom));
        bytes.AddRange(BigEndian(ExpiresAt));
        bytes.AddRange(BigEndian(PublishedAt));
        bytes.Add((byte)Versions.Length);
        bytes.AddRange(Versions);
        bytes.AddRange(BigEndian(Features));
        bytes.AddRange(BigEndian(MaxRelays));
        bytes.AddRange(BigEndian(CellSize));
        bytes.Add(Construction);
        bytes.Add(MaxDeadlineClass);
        bytes.AddRange(BigEndian(IdleTimeoutSeconds));
        bytes.AddRange(BigEndian((ushort)Endpoint.Length));
        bytes.AddRange(Endpoint);

        var message = "overlay/v1 descriptor"u8.ToArray().Concat(bytes).ToArray();
        var signature = new byte[64];
        Signer.Sign(message, signature);
        bytes.AddRange(signature);
        return [.. bytes];
    }

    private static byte[] BigEndian(ushort value)
    {
        var bytes = new byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(bytes, value);
        return bytes;
    }

    private static byte[] BigEndian(uint value)
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, value);
        return bytes;
    }

    private static byte[] BigEndian(long value)
    {
        var bytes = new byte[8];
        BinaryPrimitives.WriteInt64BigEndian(bytes, value);
        return bytes;
    }
}
