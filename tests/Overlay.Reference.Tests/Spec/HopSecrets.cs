using System.Security.Cryptography;
using System.Text;

namespace Overlay.Reference.Spec;

/// <summary>
/// docs/protocol.md 5.1: <c>PRK = HKDF-Extract(SHA-256, salt = "overlay/v1", IKM = s)</c>, then one
/// HKDF-Expand per label, 32 bytes each except the 16-byte replay tag.
/// </summary>
internal sealed class HopSecrets
{
    public const string HeaderMac = "overlay/v1 header mac";
    public const string HeaderStream = "overlay/v1 header stream";
    public const string ForwardLayer = "overlay/v1 forward layer";
    public const string BackwardLayer = "overlay/v1 backward layer";
    public const string ForwardMac = "overlay/v1 forward mac";
    public const string ForwardSeal = "overlay/v1 forward seal";
    public const string BackwardSeal = "overlay/v1 backward seal";
    public const string Trace = "overlay/v1 trace";
    public const string ReplayTag = "overlay/v1 replay tag";

    public static readonly IReadOnlyList<(string Label, int Length)> Labels =
    [
        (HeaderMac, 32), (HeaderStream, 32), (ForwardLayer, 32), (BackwardLayer, 32), (ForwardMac, 32),
        (ForwardSeal, 32), (BackwardSeal, 32), (Trace, 32), (ReplayTag, 16),
    ];

    private HopSecrets(byte[] prk, Dictionary<string, byte[]> keys)
    {
        Prk = prk;
        Keys = keys;
    }

    public byte[] Prk { get; }

    public IReadOnlyDictionary<string, byte[]> Keys { get; }

    public byte[] this[string label] => Keys[label];

    public static HopSecrets Derive(byte[] sharedSecret)
    {
        var prk = HKDF.Extract(HashAlgorithmName.SHA256, sharedSecret, Encoding.ASCII.GetBytes("overlay/v1"));
        var keys = new Dictionary<string, byte[]>();
        foreach (var (label, length) in Labels)
        {
            keys[label] = HKDF.Expand(HashAlgorithmName.SHA256, prk, length, Encoding.ASCII.GetBytes(label));
        }

        return new HopSecrets(prk, keys);
    }
}
