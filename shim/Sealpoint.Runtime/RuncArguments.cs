namespace Sealpoint.Runtime;

/// <summary>One flag as written on the command line: its tokens, its name without dashes, and its value.</summary>
public sealed record RuncFlag(int Index, int TokenCount, string Name, string? Value, bool Inline);

/// <summary>
/// A runc command line, understood the way runc (urfave/cli v1 over Go's flag package) understands it:
/// -flag and --flag alike, --flag=value and --flag value, repeated booleans, flags before or after the
/// container id, "--" ending flags. Unknown flags are kept as booleans: they are passed through and runc judges
/// them. The original tokens are kept, so a command can be handed to runc with only the image path changed.
/// </summary>
public sealed record RuncArguments
{
    /// <summary>runc's global flags that take a value.</summary>
    public static readonly IReadOnlySet<string> GlobalValueFlags = new HashSet<string> { "root", "log", "log-format", "criu", "rootless" };

    /// <summary>Flags of runc checkpoint (1.1–1.5) that take a value.</summary>
    public static readonly IReadOnlySet<string> CheckpointValueFlags = new HashSet<string>
    {
        "image-path", "work-path", "parent-path", "status-fd", "page-server", "manage-cgroups-mode", "empty-ns",
    };

    /// <summary>
    /// Flags of runc restore that take a value, plus value flags engines emit although runc restore has none
    /// (conmon's --preserve-fds N, containerd's --parent-path X): knowing them keeps the container id found.
    /// </summary>
    public static readonly IReadOnlySet<string> RestoreValueFlags = new HashSet<string>
    {
        "console-socket", "image-path", "work-path", "manage-cgroups-mode", "bundle", "b", "pid-file", "empty-ns",
        "lsm-profile", "lsm-mount-context", "preserve-fds", "parent-path",
    };

    public required IReadOnlyList<string> Tokens { get; init; }
    /// <summary>Index in <see cref="Tokens"/> of the sub-command, or -1.</summary>
    public required int CommandIndex { get; init; }
    public string? Command => CommandIndex >= 0 ? Tokens[CommandIndex] : null;
    public required IReadOnlyList<RuncFlag> GlobalFlags { get; init; }
    public required IReadOnlyList<RuncFlag> CommandFlags { get; init; }
    public required IReadOnlyList<string> Positionals { get; init; }
    /// <summary>Why the command line could not be understood (runc will say so too), or null.</summary>
    public string? Problem { get; init; }

    public string? Root => LastGlobal("root");
    public string? Log => LastGlobal("log");
    public string? LogFormat => LastGlobal("log-format");
    public bool HasGlobal(string name) => GlobalFlags.Any(f => f.Name == name);

    private string? LastGlobal(string name) => GlobalFlags.LastOrDefault(f => f.Name == name)?.Value;

    /// <summary>The value of a command flag (the last one wins, as in Go's flag package).</summary>
    public string? Value(params string[] names) => CommandFlags.LastOrDefault(f => names.Contains(f.Name))?.Value;

    /// <summary>A boolean command flag: present without a value, or with a true value.</summary>
    public bool IsSet(params string[] names)
    {
        var flag = CommandFlags.LastOrDefault(f => names.Contains(f.Name));
        return flag is not null && (flag.Value is null || flag.Value is "true" or "1" or "t" or "T" or "TRUE" or "True");
    }

    public string? ContainerId => Positionals.Count == 1 ? Positionals[0] : null;

    /// <summary>Parses argv without the program name.</summary>
    public static RuncArguments Parse(IReadOnlyList<string> tokens)
    {
        var globals = new List<RuncFlag>();
        string? problem = null;
        int i = 0, commandIndex = -1;
        while (i < tokens.Count)
        {
            string t = tokens[i];
            if (t == "--") { if (i + 1 < tokens.Count) commandIndex = i + 1; break; }
            if (!IsFlag(t)) { commandIndex = i; break; }
            var flag = ReadFlag(tokens, i, GlobalValueFlags, ref problem);
            globals.Add(flag);
            i += flag.TokenCount;
        }

        var commandFlags = new List<RuncFlag>();
        var positionals = new List<string>();
        if (commandIndex >= 0)
        {
            var valueFlags = tokens[commandIndex] switch
            {
                "checkpoint" => CheckpointValueFlags,
                "restore" => RestoreValueFlags,
                _ => new HashSet<string>(),
            };
            // urfave/cli v1 moves flags given after the container id in front of it; "--" ends flags.
            for (int j = commandIndex + 1; j < tokens.Count;)
            {
                string t = tokens[j];
                if (t == "--") { positionals.AddRange(tokens.Skip(j + 1)); break; }
                if (!IsFlag(t)) { positionals.Add(t); j++; continue; }
                var flag = ReadFlag(tokens, j, valueFlags, ref problem);
                commandFlags.Add(flag);
                j += flag.TokenCount;
            }
        }
        return new RuncArguments
        {
            Tokens = tokens.ToList(), CommandIndex = commandIndex, GlobalFlags = globals, CommandFlags = commandFlags,
            Positionals = positionals, Problem = problem,
        };
    }

    private static bool IsFlag(string t) => t.Length > 1 && t[0] == '-';

    private static RuncFlag ReadFlag(IReadOnlyList<string> tokens, int index, IReadOnlySet<string> valueFlags, ref string? problem)
    {
        string t = tokens[index];
        string body = t.StartsWith("--", StringComparison.Ordinal) ? t[2..] : t[1..];
        int eq = body.IndexOf('=');
        if (eq >= 0) return new RuncFlag(index, 1, body[..eq], body[(eq + 1)..], Inline: true);
        if (!valueFlags.Contains(body)) return new RuncFlag(index, 1, body, null, Inline: false);
        if (index + 1 >= tokens.Count)
        {
            problem ??= $"flag needs an argument: {t}";
            return new RuncFlag(index, 1, body, null, Inline: false);
        }
        return new RuncFlag(index, 2, body, tokens[index + 1], Inline: false);
    }

    /// <summary>
    /// The same command line with every occurrence of a command flag's value replaced (or the flag added right
    /// after the sub-command when absent). Everything else — order, spelling, unknown flags — is kept.
    /// </summary>
    public IReadOnlyList<string> WithCommandValue(string name, string value)
    {
        var result = Tokens.ToList();
        var matches = CommandFlags.Where(f => f.Name == name).ToList();
        if (matches.Count == 0)
        {
            result.InsertRange(CommandIndex + 1, [$"--{name}", value]);
            return result;
        }
        foreach (var f in Enumerable.Reverse(matches)) // from the end, so an insertion shifts no later index
        {
            if (f.Inline)
            {
                string t = Tokens[f.Index];
                result[f.Index] = t[..(t.IndexOf('=') + 1)] + value;
            }
            else if (f.TokenCount == 2) result[f.Index + 1] = value;
            else result.Insert(f.Index + 1, value); // defensive: a value flag without its value
        }
        return result;
    }

    /// <summary>The global flags' tokens, for another runc call (e.g. state) on the same root.</summary>
    public IReadOnlyList<string> GlobalTokens => CommandIndex >= 0 ? Tokens.Take(CommandIndex).Where(t => t != "--").ToList() : Tokens.ToList();
}
