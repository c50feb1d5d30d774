namespace Overlay.Host.Tunnels;

/// <summary>The log scope of one tunnel at one node: a random local id.</summary>
internal sealed class TunnelScope : IReadOnlyList<KeyValuePair<string, object?>>
{
    private readonly string _id;

    private TunnelScope(string id) => _id = id;

    public int Count => 1;

    public KeyValuePair<string, object?> this[int index] => index == 0 ? new("TunnelId", _id) : throw new ArgumentOutOfRangeException(nameof(index));

    public static TunnelScope New() => new(Convert.ToHexStringLower(BitConverter.GetBytes(Random.Shared.NextInt64())));

    public IEnumerator<KeyValuePair<string, object?>> GetEnumerator()
    {
        yield return this[0];
    }

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();

    public override string ToString() => $"tunnel {_id}";
}
