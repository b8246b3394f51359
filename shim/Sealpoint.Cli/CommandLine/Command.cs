using Sealpoint.Core;

namespace Sealpoint.Cli.CommandLine;

/// <summary>One option of a command. A null ValueName makes it a flag.</summary>
public sealed record OptionSpec(string Name, string? ValueName, string Help, bool Repeatable = false, string? Short = null);

/// <summary>A sub-command: its words ("keys issue"), usage, options, and what it does.</summary>
public abstract class Command
{
    /// <summary>Options every command takes.</summary>
    public static readonly OptionSpec Help = new("help", null, "show this help", Short: "h");
    public static readonly OptionSpec Json = new("json", null, "print the result as JSON for scripts");
    public static readonly OptionSpec PkiOption = new("pki", "DIR", $"PKI folder (default: $SEALPOINT_PKI or {Core.Keys.Pki.DefaultRoot})");

    public abstract string Name { get; }
    public abstract string Summary { get; }
    /// <summary>Positional arguments in the usage line, e.g. "DIR".</summary>
    public virtual string Arguments => "";
    public virtual string? Details => null;
    public abstract IReadOnlyList<OptionSpec> Options { get; }

    public abstract int Run(ParsedArguments args, Output output);

    public string Usage()
    {
        var lines = new List<string> { $"Usage: sealpoint {Name}{(Arguments.Length > 0 ? " " + Arguments : "")} [options]", "", Summary };
        if (Details is not null) lines.AddRange(["", Details]);
        lines.Add("");
        lines.Add("Options:");
        foreach (var o in Options.Append(Help))
        {
            string flag = (o.Short is null ? "    " : $"-{o.Short}, ") + $"--{o.Name}" + (o.ValueName is null ? "" : $" {o.ValueName}");
            lines.Add($"  {flag,-30} {o.Help}{(o.Repeatable ? " (repeatable)" : "")}");
        }
        return string.Join('\n', lines) + "\n";
    }

    protected static SealpointException UsageError(string problem, string fix) => new(ErrorKind.Usage, problem, fix);
}
