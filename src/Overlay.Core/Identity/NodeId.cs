using System.Buffers.Binary;

namespace Overlay.Identity;

/// <summary>
/// A node's identity: its Ed25519 public key (32 bytes). Printed as 64 lower-case hex digits;
/// <see cref="ToShortString"/> gives the first 8 for humans.
/// </summary>
public readonly struct NodeId : IEquatable<NodeId>
{
    /// <summary>The size of a node id in bytes.</summary>
    public const int Size = 32;

    private static readonly byte[] Zero = new byte[Size];
    private readonly byte[]? _bytes;

    /// <summary>Creates a node id from its 32 bytes.</summary>
    public NodeId(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != Size)
        {
            throw new ArgumentException($"a node id is {Size} bytes", nameof(bytes));
        }

        _bytes = bytes.ToArray();
    }

    /// <summary>The all-zero id, which names no node.</summary>
    public static NodeId None => default;

    /// <summary>True for the all-zero id.</summary>
    public bool IsNone => AsSpan().IndexOfAnyExcept((byte)0) < 0;

    /// <summary>The 32 bytes.</summary>
    public ReadOnlySpan<byte> AsSpan() => _bytes ?? Zero;

    /// <summary>Copies the bytes to <paramref name="destination"/>.</summary>
    public void CopyTo(Span<byte> destination) => AsSpan().CopyTo(destination);

    /// <summary>Parses 64 hex digits.</summary>
    public static NodeId Parse(string hex)
    {
        return TryParse(hex, out var id) ? id : throw new FormatException("a node id is 64 hex digits");
    }

    /// <summary>Parses 64 hex digits.</summary>
    public static bool TryParse(string? hex, out NodeId id)
    {
        id = default;
        if (hex is null || hex.Length != Size * 2)
        {
            return false;
        }

        Span<byte> bytes = stackalloc byte[Size];
        if (Convert.FromHexString(hex, bytes, out _, out var written) != System.Buffers.OperationStatus.Done || written != Size)
        {
            return false;
        }

        id = new NodeId(bytes);
        return true;
    }

    /// <inheritdoc />
    public bool Equals(NodeId other) => AsSpan().SequenceEqual(other.AsSpan());

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is NodeId other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode() => BinaryPrimitives.ReadInt32LittleEndian(AsSpan());

    /// <inheritdoc />
    public override string ToString() => Convert.ToHexStringLower(AsSpan());

    /// <summary>The first 8 hex digits.</summary>
    public string ToShortString() => Convert.ToHexStringLower(AsSpan()[..4]);

    /// <summary>Equality.</summary>
    public static bool operator ==(NodeId left, NodeId right) => left.Equals(right);

    /// <summary>Inequality.</summary>
    public static bool operator !=(NodeId left, NodeId right) => !left.Equals(right);
}
