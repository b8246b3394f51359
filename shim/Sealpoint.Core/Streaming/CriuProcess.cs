namespace Sealpoint.Core.Streaming;

/// <summary>A CRIU command line run as a child process, sharing this process's terminal (for --shell-job).</summary>
public sealed class CriuProcess : IDisposable
{
    private readonly ChildProcess _process;

    private CriuProcess(ChildProcess process, string logPath)
    {
        _process = process;
        LogPath = logPath;
    }

    public int Pid => _process.Id;
    public string LogPath { get; }
    public bool HasExited => _process.HasExited;
    public int ExitCode => _process.ExitCode;

    /// <summary>CRIU from <paramref name="given"/>, else $SEALPOINT_CRIU, else the first criu on PATH (and the sbin folders).</summary>
    public static string Resolve(string? given)
    {
        string? candidate = given ?? Environment.GetEnvironmentVariable("SEALPOINT_CRIU");
        if (candidate is { Length: > 0 })
        {
            if (File.Exists(candidate)) return Path.GetFullPath(candidate);
            throw new SealpointException(ErrorKind.NotFound, $"CRIU was not found at {candidate}", "give the path of CRIU 4.x with --criu PATH");
        }
        var dirs = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Concat(["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]);
        foreach (var dir in dirs)
        {
            string path = Path.Combine(dir, "criu");
            if (File.Exists(path)) return path;
        }
        throw new SealpointException(ErrorKind.NotFound, "CRIU was not found on PATH",
            "install CRIU 4.x (packaging/install.sh puts a launcher at /usr/local/sbin/criu) or give --criu PATH");
    }

    public static CriuProcess Start(string criu, IReadOnlyList<string> arguments, string logPath)
    {
        if (!File.Exists(criu))
            throw new SealpointException(ErrorKind.NotFound, $"CRIU was not found at {criu}", "give the path of CRIU 4.x with --criu PATH");
        // CRIU's stdout goes to our stderr, so 'sealpoint ... --json' prints one clean JSON document; stdin and
        // stderr stay shared (the terminal, for --shell-job).
        try
        {
            return new CriuProcess(ChildProcess.Start(criu, arguments, new ChildOptions { StdoutFd = 2 }), logPath);
        }
        catch (SealpointException e) when (e.Kind == ErrorKind.External)
        {
            throw new SealpointException(ErrorKind.External, $"CRIU: {e.Message}", "check that --criu names an executable CRIU 4.x", e);
        }
    }

    public bool WaitForExit(int milliseconds) => _process.WaitForExit(milliseconds);

    public void WaitForExit() => _process.WaitForExit();

    /// <summary>
    /// SIGKILLs CRIU and every process it forked (on restore, those become the restored tasks). Called before
    /// any pipe of a failed restore is closed, so CRIU never sees a short image as a complete one.
    /// </summary>
    /// <remarks>
    /// CRIU is stopped, not killed, before its children are looked for: a killed CRIU hands them to init at once,
    /// out of reach of the search, and its kernel probes stop themselves with SIGSTOP and wait for CRIU to continue
    /// them, so such an orphan would stay stopped for ever, holding our stdout and stderr. Children are stopped as they
    /// are found (a stopped task forks no more) and killed before CRIU, which, stopped, cannot reap them: their pids
    /// cannot be reused before the signal reaches them.
    /// </remarks>
    public void KillTree()
    {
        if (_process.HasExited) return;
        const int sigKill = 9, sigStop = 19;
        Posix.Kill(_process.Id, sigStop);
        var stopped = new List<int>();
        // A child forked just before CRIU stopped can fork once more before its own stop: repeat until nothing is new.
        for (int pass = 0; pass < 10; pass++)
        {
            int before = stopped.Count;
            foreach (int pid in Descendants(_process.Id))
                if (!stopped.Contains(pid)) { Posix.Kill(pid, sigStop); stopped.Add(pid); }
            if (stopped.Count == before) break;
        }
        foreach (int pid in stopped) Posix.Kill(pid, sigKill);
        Posix.Kill(_process.Id, sigKill);
    }

    /// <summary>True when <paramref name="pid"/> exists and is not a zombie (a killed task waiting to be reaped is gone).</summary>
    public static bool IsRunning(int pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            char state = stat[stat.LastIndexOf(')') + 2];
            return state is not ('Z' or 'X');
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentOutOfRangeException) { return false; }
    }

    /// <summary>Every descendant of <paramref name="root"/>, from the parent links in /proc.</summary>
    public static List<int> Descendants(int root)
    {
        var parents = new Dictionary<int, int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid)) continue;
            try
            {
                string stat = File.ReadAllText(Path.Combine(dir, "stat"));
                // pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after the last ')'.
                var rest = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                parents[pid] = int.Parse(rest[1]);
            }
            catch (Exception e) when (e is IOException or FormatException or ArgumentOutOfRangeException or UnauthorizedAccessException) { }
        }
        var result = new List<int>();
        var frontier = new Queue<int>([root]);
        while (frontier.Count > 0)
        {
            int p = frontier.Dequeue();
            foreach (var (child, parent) in parents)
                if (parent == p) { result.Add(child); frontier.Enqueue(child); }
        }
        return result;
    }

    /// <summary>Where a failure message sends the reader: CRIU's log, or, when CRIU was stopped before it wrote one, that fact.</summary>
    public static string SeeLog(string logPath) => File.Exists(logPath)
        ? $"see CRIU's log {logPath}"
        : $"CRIU wrote no log ({logPath} does not exist: it was stopped before it began logging)";

    /// <summary>The error lines of CRIU's log (or its last lines), for a failure message.</summary>
    public string LogSummary(int lines = 6)
    {
        try
        {
            if (!File.Exists(LogPath)) return "";
            var all = File.ReadAllLines(LogPath);
            // CRIU always logs that it cannot raise RLIMIT_NOFILE without CAP_SYS_RESOURCE; it is harmless.
            var errors = all.Where(l => l.Contains("Error", StringComparison.Ordinal) && !l.Contains("RLIMIT_NOFILE", StringComparison.Ordinal)).TakeLast(lines).ToList();
            var chosen = errors.Count > 0 ? errors : all.TakeLast(lines).ToList();
            return string.Join(" | ", chosen.Select(l => l.Trim()));
        }
        catch (IOException) { return ""; }
    }

    public void Dispose() => _process.Dispose();
}
