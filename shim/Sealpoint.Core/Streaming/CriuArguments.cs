namespace Sealpoint.Core.Streaming;

/// <summary>Checks the CRIU options a user passes through: the ones Sealpoint sets itself, or that streaming cannot do, are refused.</summary>
public static class CriuArguments
{
    private static readonly Dictionary<string, string> Refused = new(StringComparer.Ordinal)
    {
        ["-D"] = "Sealpoint gives CRIU its images directory; use sealpoint's own -D",
        ["--images-dir"] = "Sealpoint gives CRIU its images directory; use sealpoint's own -D",
        ["-W"] = "use sealpoint's --work-dir",
        ["--work-dir"] = "use sealpoint's --work-dir",
        ["--stream"] = "Sealpoint always streams",
        ["-t"] = "use sealpoint's -t",
        ["--tree"] = "use sealpoint's -t",
        ["--prev-images-dir"] = "CRIU's image streaming does not support incremental images",
        ["--track-mem"] = "CRIU's image streaming does not support incremental images",
        ["--auto-dedup"] = "CRIU's image streaming does not support incremental images",
        ["--page-server"] = "pages go through the image stream, not a page server",
        ["--lazy-pages"] = "lazy pages are not supported with image streaming",
    };

    /// <summary>Throws a usage error naming the first option that cannot pass through.</summary>
    public static void Check(IReadOnlyList<string> arguments, string command)
    {
        foreach (string a in arguments)
        {
            string name = a.Split('=', 2)[0];
            if (name.StartsWith("-D", StringComparison.Ordinal) && name.Length > 2 && !name.StartsWith("--", StringComparison.Ordinal)) name = "-D";
            if (name.StartsWith("-W", StringComparison.Ordinal) && name.Length > 2 && !name.StartsWith("--", StringComparison.Ordinal)) name = "-W";
            if (Refused.TryGetValue(name, out string? why))
                throw new SealpointException(ErrorKind.Usage, $"CRIU option '{a}' cannot be passed to 'sealpoint {command}': {why}",
                    $"remove it; see 'sealpoint {command} --help'");
        }
    }

    /// <summary>True when the arguments choose CRIU's log file themselves (-o/--log-file).</summary>
    public static bool SetsLogFile(IReadOnlyList<string> arguments) =>
        arguments.Any(a => a == "-o" || a.StartsWith("--log-file", StringComparison.Ordinal) || (a.StartsWith("-o", StringComparison.Ordinal) && !a.StartsWith("--", StringComparison.Ordinal)));

    /// <summary>The log file the arguments name (relative paths are CRIU's, i.e. in the work directory).</summary>
    public static string? LogFileOf(IReadOnlyList<string> arguments, string workDir)
    {
        for (int i = 0; i < arguments.Count; i++)
        {
            string a = arguments[i];
            string? value = null;
            if ((a == "-o" || a == "--log-file") && i + 1 < arguments.Count) value = arguments[i + 1];
            else if (a.StartsWith("--log-file=", StringComparison.Ordinal)) value = a["--log-file=".Length..];
            else if (a.StartsWith("-o", StringComparison.Ordinal) && a.Length > 2 && !a.StartsWith("--", StringComparison.Ordinal)) value = a[2..];
            if (value is not null) return Path.IsPathRooted(value) ? value : Path.Combine(workDir, value);
        }
        return null;
    }
}
