namespace Overlay.Host.Control;

/// <summary>One named application (<c>Overlay:Control:Applications:&lt;name&gt;</c>).</summary>
public sealed class ControlApplicationOptions
{
    /// <summary>The file holding this application's token (at least 16 characters, no spaces).</summary>
    public string? TokenFile { get; set; }

    /// <summary>
    /// With mTLS: the SHA-256 thumbprint (hex) of the client certificate that identifies this
    /// application. A call presenting it is this application (with its own token or the shared
    /// application token, never another application's).
    /// </summary>
    public string? ClientCertificate { get; set; }

    /// <summary>True for 1 to 32 lower-case letters, digits or '-' that is not one of the built-in callers' names.</summary>
    public static bool IsValidName(string name) =>
        name.Length is > 0 and <= 32
        && name.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '-')
        && name is not (ControlTokens.OperatorName or ControlTokens.ApplicationName);
}
