namespace Overlay.Identity;

/// <summary>Why a node descriptor was refused by <see cref="NodeDescriptor.TryParse"/> or <see cref="NodeDescriptor.Validate"/>.</summary>
public enum DescriptorError
{
    /// <summary>Not an error.</summary>
    None,

    /// <summary>Bad lengths, counts or field values.</summary>
    Malformed,

    /// <summary>Longer than <see cref="NodeDescriptor.MaxSize"/> bytes.</summary>
    TooLarge,

    /// <summary>A format version this code does not read.</summary>
    UnsupportedFormat,

    /// <summary>The signature does not verify against the node id.</summary>
    BadSignature,

    /// <summary>The onion key has its top bit set or is not below the field prime (two encodings of one key).</summary>
    NonCanonicalOnionKey,

    /// <summary>The endpoint is not scheme://host:port (http or https, explicit port, no path, query, fragment or user info), of 1 to 255 bytes.</summary>
    InvalidEndpoint,

    /// <summary>The onion key expired (beyond the allowed clock skew).</summary>
    Expired,

    /// <summary>The onion key's valid-from or the publication time is in the future (beyond the allowed clock skew).</summary>
    NotYetValid,

    /// <summary>The node runs with other network parameters.</summary>
    NetworkMismatch,

    /// <summary>The node offers no protocol version this code speaks.</summary>
    NoCommonProtocolVersion,

    /// <summary>The onion key is an X25519 point of small order (every shared secret with it would be zero).</summary>
    LowOrderOnionKey,
}

/// <summary>Helpers over <see cref="DescriptorError"/>.</summary>
public static class DescriptorErrors
{
    /// <summary>A one-line reason for humans (logs, CLI output).</summary>
    public static string Describe(this DescriptorError error) => error switch
    {
        DescriptorError.None => "the descriptor is valid",
        DescriptorError.Malformed => "the descriptor is malformed (bad lengths, counts or field values)",
        DescriptorError.TooLarge => $"the descriptor is larger than {NodeDescriptor.MaxSize} bytes",
        DescriptorError.UnsupportedFormat => $"the descriptor's format version is not one this node reads (version {NodeDescriptor.FormatVersion})",
        DescriptorError.BadSignature => "the descriptor's signature does not verify against its node id",
        DescriptorError.NonCanonicalOnionKey => "the descriptor's onion key is a non-canonical X25519 key (top bit set, or not below the field prime)",
        DescriptorError.InvalidEndpoint => "the descriptor's endpoint is not scheme://host:port (http or https, an explicit port, no path, query, fragment or user info, at most 255 bytes)",
        DescriptorError.Expired => "the descriptor's onion key has expired (beyond the allowed clock skew)",
        DescriptorError.NotYetValid => "the descriptor's onion key or publication time is in the future beyond the allowed clock skew (check both clocks)",
        DescriptorError.NetworkMismatch => "the node runs with other network parameters (MaxRelays, cell size or cell construction)",
        DescriptorError.NoCommonProtocolVersion => $"the node offers no protocol version this node speaks (version {NodeDescriptor.ProtocolVersion})",
        DescriptorError.LowOrderOnionKey => "the descriptor's onion key is an X25519 point of small order (no header can be built to it)",
        _ => $"unknown descriptor error {(int)error}",
    };
}
