using Sealpoint.Core;

namespace Sealpoint.Cli.CommandLine;

/// <summary>The CRIU options a streaming command recognises itself, plus everything after '--'.</summary>
public static class CriuPassThrough
{
    public static List<string> Collect(ParsedArguments args, IReadOnlyList<string> flags, IReadOnlyList<string>? pathOptions = null)
    {
        var result = new List<string>();
        foreach (var f in flags) if (args.Has(f)) result.Add("--" + f);
        // Paths the user types are relative to where they type them, not to CRIU's work directory.
        foreach (var o in (pathOptions ?? []).Append("log-file"))
            if (args.Get(o) is { } value) result.AddRange(["--" + o, Path.GetFullPath(value)]);
        if (args.Get("verbosity") is { } v)
        {
            if (v is not ("0" or "1" or "2" or "3" or "4"))
                throw new SealpointException(ErrorKind.Usage, $"--verbosity must be 0 to 4, not '{v}'", "write e.g. -v 4");
            result.Add("-v" + v);
        }
        result.AddRange(args.Positionals);
        return result;
    }
}
