using System.Security.Cryptography;
using Overlay.Crypto;

namespace Overlay.Tests.Support;

/// <summary>
/// The test vectors' randomness: the AES-256-CTR keystream (Overlay's counter layout, sequence 0)
/// under SHA-256 of a label, consumed in order. Documented in docs/protocol.md so another
/// implementation can reproduce the vectors byte for byte. Never use outside tests.
/// </summary>
internal sealed class DeterministicRandom : IOnionRandom, IDisposable
{
    private readonly AesCtr _stream;
    private readonly byte[] _buffer = new byte[16];
    private ulong _block;
    private int _used = 16;

    public DeterministicRandom(string label) => _stream = new AesCtr(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(label)));

    public void Fill(Span<byte> destination)
    {
        for (var i = 0; i < destination.Length; i++)
        {
            if (_used == 16)
            {
                _stream.Keystream(0, _buffer, _block++);
                _used = 0;
            }

            destination[i] = _buffer[_used++];
        }
    }

    public void Dispose() => _stream.Dispose();
}
