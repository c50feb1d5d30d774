using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace Overlay.Client;

/// <summary>
/// The host name that names a service on the overlay: <c>&lt;service&gt;.&lt;node id in base32&gt;.overlay</c>.
/// The 32-byte node id is written in RFC 4648 base32 (alphabet <c>a-z2-7</c>, lower case, no
/// padding): 52 characters, so it fits one DNS label (at most 63), where its 64 hex digits do not.
/// The last character carries one bit, so its low four bits must be zero: every id has one name.
/// Upper case is accepted, as DNS names are case-insensitive.
/// </summary>
public static class OverlayHostName
{
    /// <summary>The top-level label every overlay host name ends with.</summary>
    public const string Suffix = ".overlay";

    /// <summary>Characters of a node id in base32.</summary>
    public const int NodeLabelLength = 52;

    private const int NodeIdBytes = 32;
    private const int MaxServiceBytes = 32;
    private const string Alphabet = "abcdefghijklmnopqrstuvwxyz234567";

    /// <summary>The host name of <paramref name="service"/> at the node <paramref name="nodeId"/> (64 hex digits).</summary>
    public static string Format(string nodeId, string service)
    {
        if (!IsValidService(service))
        {
            throw new ArgumentException($"a service in a host name is one DNS label of 1 to {MaxServiceBytes} bytes without '.'", nameof(service));
        }

        return $"{service}.{ToBase32(NodeIdFromHex(nodeId))}{Suffix}";
    }

    /// <summary>The node id (64 hex digits) in base32, as the host name carries it.</summary>
    public static string ToBase32(string nodeId) => ToBase32(NodeIdFromHex(nodeId));

    /// <summary>
    /// Reads <c>&lt;service&gt;.&lt;node&gt;.overlay</c> (a trailing dot allowed); <paramref name="nodeId"/>
    /// comes back as 64 lower-case hex digits. False with <paramref name="problem"/> saying why otherwise.
    /// </summary>
    public static bool TryParse(string host, [NotNullWhen(true)] out string? nodeId, [NotNullWhen(true)] out string? service,
        [NotNullWhen(false)] out string? problem)
    {
        (nodeId, service) = (null, null);
        var name = host.EndsWith('.') ? host[..^1] : host;
        if (!name.EndsWith(Suffix, StringComparison.OrdinalIgnoreCase))
        {
            problem = $"'{host}' is not an overlay name (<service>.<node id in base32>{Suffix})";
            return false;
        }

        var labels = name[..^Suffix.Length].Split('.');
        if (labels.Length != 2)
        {
            problem = $"'{host}' must have exactly two labels before {Suffix}: <service>.<node id in base32>";
            return false;
        }

        if (!IsValidService(labels[0]))
        {
            problem = $"'{labels[0]}' is not a service name (1 to {MaxServiceBytes} bytes)";
            return false;
        }

        if (!TryFromBase32(labels[1], out var id))
        {
            problem = $"'{labels[1]}' is not a node id in base32 ({NodeLabelLength} characters of a-z and 2-7, ending in 'a' or 'q')";
            return false;
        }

        (nodeId, service, problem) = (Convert.ToHexStringLower(id), labels[0], null);
        return true;
    }

    /// <summary>True when <paramref name="service"/> fits a host name: one label of 1 to 32 bytes, no '.'.</summary>
    public static bool IsValidService(string service) =>
        service.Length > 0 && Encoding.UTF8.GetByteCount(service) <= MaxServiceBytes && !service.Contains('.') && !service.Contains('\0');

    private static byte[] NodeIdFromHex(string nodeId)
    {
        if (nodeId.Length != NodeIdBytes * 2 || !nodeId.All(Uri.IsHexDigit))
        {
            throw new ArgumentException("a node id is 64 hex digits", nameof(nodeId));
        }

        return Convert.FromHexString(nodeId);
    }

    private static string ToBase32(ReadOnlySpan<byte> id)
    {
        var text = new StringBuilder(NodeLabelLength);
        int buffer = 0, bits = 0;
        foreach (var b in id)
        {
            buffer = (buffer << 8) | b;
            bits += 8;
            while (bits >= 5)
            {
                text.Append(Alphabet[(buffer >> (bits - 5)) & 31]);
                bits -= 5;
            }
        }

        if (bits > 0)
        {
            text.Append(Alphabet[(buffer << (5 - bits)) & 31]);
        }

        return text.ToString();
    }

    private static bool TryFromBase32(string label, [NotNullWhen(true)] out byte[]? id)
    {
        id = null;
        if (label.Length != NodeLabelLength)
        {
            return false;
        }

        var bytes = new byte[NodeIdBytes];
        int buffer = 0, bits = 0, written = 0;
        foreach (var c in label)
        {
            var value = Alphabet.IndexOf(char.ToLowerInvariant(c), StringComparison.Ordinal);
            if (value < 0)
            {
                return false;
            }

            buffer = (buffer << 5) | value;
            bits += 5;
            if (bits >= 8)
            {
                bytes[written++] = (byte)(buffer >> (bits - 8));
                bits -= 8;
            }

            buffer &= (1 << bits) - 1;
        }

        // 52 characters carry 260 bits: the 4 left over must be zero, or two names would mean one id.
        if (buffer != 0)
        {
            return false;
        }

        id = bytes;
        return true;
    }
}
