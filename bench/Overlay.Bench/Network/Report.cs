using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Overlay.Bench.Network;

/// <summary>One figure of the report, under a stable name (the JSON key).</summary>
internal sealed record Figure(string Section, string Name, string Label, double Value, string Unit, string Format);

/// <summary>A target of the issue, checked against a figure of the same run.</summary>
internal sealed record Target(string Figure, string Description, bool AtMost, double Threshold)
{
    public bool Met(double value) => !double.IsNaN(value) && (AtMost ? value <= Threshold : value >= Threshold);
}

/// <summary>Collects the figures of a run and prints them as a table, or writes them as JSON.</summary>
internal sealed class Report
{
    private readonly List<Figure> _figures = [];
    private readonly List<Target> _targets = [];
    private readonly Dictionary<string, object> _runs = [];
    private readonly List<(string Section, string Text)> _notes = [];

    public Dictionary<string, string> Context { get; } = [];

    /// <summary>The heading of the printed report.</summary>
    public string Title { get; init; } = "Network harness";

    public void Add(string section, string name, string label, double value, string unit, string format = "F1") =>
        _figures.Add(new Figure(section, name, label, value, unit, format));

    /// <summary>Every per-run value behind a median, kept for the JSON file.</summary>
    public void Runs(string name, IEnumerable<double> values) => _runs[name] = values.Select(v => Math.Round(v, 4)).ToArray();

    public void Note(string section, string text) => _notes.Add((section, text));

    public void AddTarget(string figure, string description, bool atMost, double threshold) =>
        _targets.Add(new Target(figure, description, atMost, threshold));

    public double Value(string name) => _figures.LastOrDefault(f => f.Name == name)?.Value ?? double.NaN;

    public void Print(TextWriter output)
    {
        output.WriteLine();
        output.WriteLine($"## {Title}");
        output.WriteLine();
        foreach (var (key, value) in Context)
        {
            output.WriteLine($"- {key}: {value}");
        }

        foreach (var section in _figures.Select(f => f.Section).Distinct())
        {
            output.WriteLine();
            output.WriteLine($"### {section}");
            output.WriteLine();
            output.WriteLine("| figure | value | unit | key |");
            output.WriteLine("|---|---:|---|---|");
            foreach (var figure in _figures.Where(f => f.Section == section))
            {
                output.WriteLine($"| {figure.Label} | {Format(figure)} | {figure.Unit} | `{figure.Name}` |");
            }

            foreach (var (_, text) in _notes.Where(n => n.Section == section))
            {
                output.WriteLine();
                output.WriteLine(text);
            }
        }

        output.WriteLine();
        output.WriteLine("### Targets");
        output.WriteLine();
        output.WriteLine("| target | measured | met |");
        output.WriteLine("|---|---:|---|");
        foreach (var target in _targets)
        {
            var value = Value(target.Figure);
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {target.Description} (`{target.Figure}`) | {value:F2} | {(double.IsNaN(value) ? "not measured" : target.Met(value) ? "yes" : "**no**")} |"));
        }
    }

    public void WriteJson(string path)
    {
        var document = new Dictionary<string, object>
        {
            ["context"] = Context,
            ["figures"] = _figures.ToDictionary(f => f.Name, f => (object)(double.IsNaN(f.Value) ? "NaN" : Math.Round(f.Value, 4))),
            ["units"] = _figures.ToDictionary(f => f.Name, f => f.Unit),
            ["targets"] = _targets.Select(t => new Dictionary<string, object>
            {
                ["figure"] = t.Figure,
                ["description"] = t.Description,
                ["comparison"] = t.AtMost ? "<=" : ">=",
                ["threshold"] = t.Threshold,
                ["value"] = double.IsNaN(Value(t.Figure)) ? "NaN" : Math.Round(Value(t.Figure), 4),
                ["met"] = t.Met(Value(t.Figure)),
            }).ToArray(),
            ["runs"] = _runs,
        };
        File.WriteAllText(path, JsonSerializer.Serialize(document, new JsonSerializerOptions { WriteIndented = true }) + "\n", new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
    }

    private static string Format(Figure figure) =>
        double.IsNaN(figure.Value) ? "n/a" : figure.Value.ToString(figure.Format, CultureInfo.InvariantCulture);
}
