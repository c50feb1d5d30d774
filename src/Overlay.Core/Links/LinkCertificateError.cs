namespace Overlay.Links;

/// <summary>Why a link certificate does not prove a node identity (docs/protocol.md, "Link certificates").</summary>
public enum LinkCertificateError
{
    /// <summary>The certificate proves the node id it names.</summary>
    None,

    /// <summary>No certificate was presented.</summary>
    Missing,

    /// <summary>The certificate's validity cannot be read from its DER.</summary>
    MalformedCertificate,

    /// <summary>The key is not an ECDSA P-256 key.</summary>
    WrongKeyType,

    /// <summary>NotBefore lies in the future, beyond the allowed clock skew.</summary>
    NotYetValid,

    /// <summary>NotAfter has passed, beyond the allowed clock skew.</summary>
    Expired,

    /// <summary>The validity period is longer than <see cref="LinkCertificate.MaxValidity"/>.</summary>
    ValidityTooLong,

    /// <summary>The identity extension is absent.</summary>
    MissingExtension,

    /// <summary>The identity extension is present twice, not critical, or not the exact DER encoding.</summary>
    MalformedExtension,

    /// <summary>The identity extension names a format version this code does not read.</summary>
    UnsupportedVersion,

    /// <summary>The identity's signature over the certificate's validity and public key does not verify.</summary>
    BadSignature,

    /// <summary>The certificate proves another node than the one dialed.</summary>
    WrongNode,
}

/// <summary>Helpers over <see cref="LinkCertificateError"/>.</summary>
public static class LinkCertificateErrors
{
    /// <summary>The lower-case name used in logs and metric tags.</summary>
    public static string ToTag(this LinkCertificateError error) => error switch
    {
        LinkCertificateError.None => "none",
        LinkCertificateError.Missing => "missing",
        LinkCertificateError.MalformedCertificate => "malformed_certificate",
        LinkCertificateError.WrongKeyType => "wrong_key_type",
        LinkCertificateError.NotYetValid => "not_yet_valid",
        LinkCertificateError.Expired => "expired",
        LinkCertificateError.ValidityTooLong => "validity_too_long",
        LinkCertificateError.MissingExtension => "missing_extension",
        LinkCertificateError.MalformedExtension => "malformed_extension",
        LinkCertificateError.UnsupportedVersion => "unsupported_version",
        LinkCertificateError.BadSignature => "bad_signature",
        LinkCertificateError.WrongNode => "wrong_node",
        _ => "unknown",
    };

    /// <summary>A sentence for a log line.</summary>
    public static string Describe(this LinkCertificateError error) => error switch
    {
        LinkCertificateError.None => "valid",
        LinkCertificateError.Missing => "no certificate was presented",
        LinkCertificateError.MalformedCertificate => "the certificate's validity cannot be read",
        LinkCertificateError.WrongKeyType => "the certificate key is not ECDSA P-256",
        LinkCertificateError.NotYetValid => "the certificate is not valid yet (NotBefore in the future)",
        LinkCertificateError.Expired => "the certificate has expired (NotAfter passed)",
        LinkCertificateError.ValidityTooLong => $"the certificate is valid for longer than {LinkCertificate.MaxValidity.TotalDays} days",
        LinkCertificateError.MissingExtension => "the certificate has no node identity extension",
        LinkCertificateError.MalformedExtension => "the node identity extension is malformed",
        LinkCertificateError.UnsupportedVersion => "the node identity extension has an unknown version",
        LinkCertificateError.BadSignature => "the node identity's signature over the certificate's validity and key does not verify",
        LinkCertificateError.WrongNode => "the certificate proves another node than the one dialed",
        _ => "unknown",
    };
}
