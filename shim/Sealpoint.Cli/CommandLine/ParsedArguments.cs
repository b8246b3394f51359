using Sealpoint.Core;

namespace Sealpoint.Cli.CommandLine;

/// <summary>Options and positionals of one invocation, parsed against a command's option list.</summary>
public sealed class ParsedArguments
{
    private readonly Dictionary<string, List<string>> _values = new(StringComparer.Ordinal);
    private readonly HashSet<string> _flags = new(StringComparer.Ordinal);
    private readonly string _command;

    private ParsedArguments(string command) => _command = command;

    public List<string> Positionals { get; } = [];

    /// <summary>Accepts --name value, --name=value, -s value, and "--" to end options.</summary>
    public static ParsedArguments Parse(Command command, IReadOnlyList<string> args)
    {
        var result = new ParsedArguments(command.Name);
        var specs = command.Options.Append(Command.Help).ToList();
        for (int i = 0; i < args.Count; i++)
        {
            string a = args[i];
            if (a == "--") { result.Positionals.AddRange(args.Skip(i + 1)); break; }
            if (!a.StartsWith('-') || a == "-") { result.Positionals.Add(a); continue; }
            string name = a.StartsWith("--", StringComparison.Ordinal) ? a[2..] : a[1..];
            string? inline = null;
            int eq = name.IndexOf('=');
            if (eq >= 0) { inline = name[(eq + 1)..]; name = name[..eq]; }
            var spec = specs.FirstOrDefault(s => s.Name == name || s.Short == name)
                ?? throw new SealpointException(ErrorKind.Usage, $"unknown option '{a}' for 'sealpoint {command.Name}'", $"see 'sealpoint {command.Name} --help'");
            if (spec.ValueName is null)
            {
                if (inline is not null) throw new SealpointException(ErrorKind.Usage, $"option --{spec.Name} takes no value", $"write --{spec.Name} alone");
                result._flags.Add(spec.Name);
                continue;
            }
            string value = inline ?? (i + 1 < args.Count ? args[++i] : throw new SealpointException(ErrorKind.Usage,
                $"option --{spec.Name} needs a value ({spec.ValueName})", $"write --{spec.Name} {spec.ValueName}"));
            if (!result._values.TryGetValue(spec.Name, out var list)) result._values[spec.Name] = list = [];
            if (list.Count > 0 && !spec.Repeatable)
                throw new SealpointException(ErrorKind.Usage, $"option --{spec.Name} given twice", $"give --{spec.Name} once");
            list.Add(value);
        }
        return result;
    }

    public bool Has(string flag) => _flags.Contains(flag);
    public string? Get(string name) => _values.TryGetValue(name, out var v) ? v[0] : null;
    public IReadOnlyList<string> GetAll(string name) => _values.TryGetValue(name, out var v) ? v : [];

    public string Require(string name, string fix) => Get(name)
        ?? throw new SealpointException(ErrorKind.Usage, $"'sealpoint {_command}' needs --{name}", fix);

    public int GetInt(string name, int fallback)
    {
        string? s = Get(name);
        if (s is null) return fallback;
        return int.TryParse(s, out int v) && v > 0 ? v : throw new SealpointException(ErrorKind.Usage, $"--{name} must be a positive whole number, not '{s}'", $"write e.g. --{name} {fallback}");
    }

    /// <summary>Exactly <paramref name="count"/> positionals, named for the error message.</summary>
    public IReadOnlyList<string> ExpectPositionals(int count, string names)
    {
        if (Positionals.Count != count)
            throw new SealpointException(ErrorKind.Usage, $"'sealpoint {_command}' takes {names}, got {Positionals.Count} argument(s)",
                $"write 'sealpoint {_command} {names}' (see --help)");
        return Positionals;
    }
}
