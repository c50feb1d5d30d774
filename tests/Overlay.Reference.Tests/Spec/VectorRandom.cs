using System.Security.Cryptography;
using System.Text;

namespace Overlay.Reference.Spec;

/// <summary>
/// docs/protocol.md 12: the vectors' randomness, the AES-256-CTR keystream (sequence 0) under
/// SHA-256 of a label, consumed in order.
/// </summary>
internal sealed class VectorRandom(string label)
{
    private readonly byte[] _key = SHA256.HashData(Encoding.UTF8.GetBytes(label));
    private int _used;

    public byte[] Take(int count)
    {
        var bytes = CounterMode.Keystream(_key, 0, _used + count)[_used..];
        _used += count;
        return bytes;
    }
}
