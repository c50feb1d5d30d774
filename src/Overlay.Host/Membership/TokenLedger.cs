using System.Security.Cryptography;
using System.Text.Json;

namespace Overlay.Host.Membership;

/// <summary>
/// How often each join token of this authority was spent, kept in the data directory so a restart
/// does not renew a token's uses. Tokens are stored by their SHA-256 only, never in the clear.
/// </summary>
internal sealed class TokenLedger
{
    public const string FileName = "membership-tokens.json";

    private readonly string _path;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, int> _spent;

    public TokenLedger(string dataDirectory)
    {
        _path = Path.Combine(dataDirectory, FileName);
        _spent = File.Exists(_path)
            ? JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(_path)) ?? []
            : [];
    }

    /// <summary>Spends one use of <paramref name="token"/> when fewer than <paramref name="uses"/> were spent; false otherwise.</summary>
    public bool TrySpend(string token, int uses)
    {
        var key = Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(token)));
        lock (_lock)
        {
            var spent = _spent.GetValueOrDefault(key);
            if (spent >= uses)
            {
                return false;
            }

            _spent[key] = spent + 1;
            // Written before the membership is issued: a crash loses a use, never grants an extra one.
            var temporary = _path + ".tmp";
            File.WriteAllText(temporary, JsonSerializer.Serialize(_spent));
            File.Move(temporary, _path, overwrite: true);
            return true;
        }
    }
}
