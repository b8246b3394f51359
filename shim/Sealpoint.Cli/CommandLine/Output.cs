using System.Text.Json;
using System.Text.Json.Nodes;

namespace Sealpoint.Cli.CommandLine;

/// <summary>Where a command writes: human text, or one JSON document with --json.</summary>
public sealed class Output(TextWriter stdout, TextWriter stderr, bool json)
{
    public bool IsJson { get; } = json;
    public TextWriter Out { get; } = stdout;
    public TextWriter Error { get; } = stderr;

    /// <summary>Human-readable line; suppressed in JSON mode so stdout stays one JSON document.</summary>
    public void Line(string text = "")
    {
        if (!IsJson) Out.WriteLine(text);
    }

    public void Warn(string text) => Error.WriteLine($"sealpoint: warning: {text}");

    public void WriteJson(JsonNode node) => Out.WriteLine(node.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
}
