using System.Diagnostics.Metrics;
using Overlay.Identity;

namespace Overlay.Testing;

/// <summary>Counts one counter instrument of one node (its meter's instance tag), by the value of one measurement tag.</summary>
internal sealed class NodeCounter : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly Dictionary<string, long> _counts = [];

    public NodeCounter(NodeId node, string instrument, string tag)
    {
        var id = node.ToString();
        _listener.InstrumentPublished = (published, listener) =>
        {
            if (published.Name == instrument && published.Meter.Tags?.Any(t => t.Value as string == id) == true)
            {
                listener.EnableMeasurementEvents(published);
            }
        };
        _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (var measured in tags)
            {
                if (measured.Key == tag)
                {
                    lock (_counts)
                    {
                        _counts[(string)measured.Value!] = _counts.GetValueOrDefault((string)measured.Value!) + value;
                    }
                }
            }
        });
        _listener.Start();
    }

    public long Count(string value)
    {
        lock (_counts)
        {
            return _counts.GetValueOrDefault(value);
        }
    }

    public void Dispose() => _listener.Dispose();
}
