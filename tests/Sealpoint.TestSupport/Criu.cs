namespace Sealpoint.TestSupport;

public sealed record CriuOptions
{
    /// <summary>--shell-job: the tree belongs to a session or terminal it does not lead.</summary>
    public bool ShellJob { get; init; }

    /// <summary>dump only: --leave-running.</summary>
    public bool LeaveRunning { get; init; }

    /// <summary>-W: where CRIU writes its log (and stats); default: the images folder, as CRIU does.</summary>
    public string? WorkDir { get; init; }

    /// <summary>More CRIU arguments, appended as given.</summary>
    public IReadOnlyList<string> ExtraArgs { get; init; } = [];

    public TimeSpan Timeout { get; init; } = TimeSpan.FromMinutes(5);
}

/// <summary>CRIU failed; the message holds the command, its output and the tail of CRIU's log.</summary>
public sealed class CriuException(string message) : Exception(message);

public sealed record CriuDumpResult(string ImagesDir, string LogFile, IReadOnlyList<int> DumpedPids, ProcessResult Process);

public sealed record CriuRestoreResult(string ImagesDir, string LogFile, int Pid, ProcessResult Process);

/// <summary>Runs the CRIU 4.x command line (not through runc): dump, restore, check.</summary>
public static class Criu
{
    /// <summary>
    /// criu dump -t PID -D IMAGES. Without LeaveRunning it then waits until the dumped processes
    /// are gone and reaped, so a restore of the same pids can follow at once.
    /// </summary>
    public static CriuDumpResult Dump(int pid, string imagesDir, CriuOptions? options = null)
    {
        options ??= new CriuOptions();
        Directory.CreateDirectory(imagesDir);
        var tree = Pids.Tree(pid);
        if (tree.Count == 0) throw new CriuException($"criu dump: process {pid} does not exist");
        var log = LogPath(imagesDir, options, "dump.log");
        var args = new List<string> { "dump", "-t", pid.ToString(), "-D", imagesDir, "-v4", "-o", log };
        AddCommon(args, options);
        if (options.LeaveRunning) args.Add("--leave-running");
        var result = RunCriu(args, options, log, outputFile: null);
        if (!options.LeaveRunning) Pids.WaitReaped(tree, TimeSpan.FromSeconds(30));
        return new CriuDumpResult(imagesDir, log, tree, result);
    }

    /// <summary>criu restore -D IMAGES -d: restores the tree detached and returns its root pid.</summary>
    public static CriuRestoreResult Restore(string imagesDir, CriuOptions? options = null)
    {
        options ??= new CriuOptions();
        if (!File.Exists(Path.Combine(imagesDir, "inventory.img")))
            throw new CriuException($"criu restore: {imagesDir} holds no inventory.img, so it is not a CRIU image folder");
        var log = LogPath(imagesDir, options, "restore.log");
        // The pid file and criu's own output go outside the images folder (tests inspect it).
        var pidFile = Path.Combine(Path.GetTempPath(), $"sealpoint-criu-{Guid.NewGuid():N}.pid");
        var outputFile = Path.ChangeExtension(pidFile, ".out");
        try
        {
            var args = new List<string> { "restore", "-D", imagesDir, "-d", "-v4", "-o", log, "--pidfile", pidFile };
            AddCommon(args, options);
            // OutputFile: the restored tree must not inherit pipes to the test process.
            var result = RunCriu(args, options, log, outputFile);
            if (!File.Exists(pidFile) || !int.TryParse(File.ReadAllText(pidFile).Trim(), out var pid))
                throw new CriuException($"criu restore succeeded but wrote no pid to {pidFile}\n{result.Describe()}");
            return new CriuRestoreResult(imagesDir, log, pid, result);
        }
        finally
        {
            File.Delete(pidFile);
            File.Delete(outputFile);
        }
    }

    /// <summary>criu check; returns its output (warnings are fine), throws unless it says "Looks good".</summary>
    public static string Check()
    {
        var result = ProcessRunner.Run(Tools.Require("criu"), ["check"]);
        var text = result.StandardOutput + result.StandardError;
        if (!text.Contains("Looks good"))
            throw new CriuException($"criu check did not say 'Looks good':\n{result.Describe()}\nfix: {InstallPaths.InstallHint}");
        return text;
    }

    private static string LogPath(string imagesDir, CriuOptions options, string name)
    {
        if (options.WorkDir != null) Directory.CreateDirectory(options.WorkDir);
        return Path.GetFullPath(Path.Combine(options.WorkDir ?? imagesDir, name));
    }

    private static void AddCommon(List<string> args, CriuOptions options)
    {
        if (options.WorkDir != null) args.AddRange(["-W", options.WorkDir]);
        if (options.ShellJob) args.Add("--shell-job");
        args.AddRange(options.ExtraArgs);
    }

    private static ProcessResult RunCriu(List<string> args, CriuOptions options, string log, string? outputFile)
    {
        Tools.RequireRoot();
        var criu = Tools.Require("criu");
        var result = ProcessRunner.RunUnchecked(criu, args, new RunOptions { Timeout = options.Timeout, OutputFile = outputFile });
        if (result.Succeeded) return result;
        var output = outputFile != null && File.Exists(outputFile) ? $"\n--- criu output ---\n{FileTail.Read(outputFile, 20)}" : "";
        throw new CriuException(
            $"{result.Describe()}{output}\n--- last lines of {log} ---\n{(File.Exists(log) ? FileTail.Read(log, 40) : "(no log written)")}\n" +
            "fix: read CRIU's errors above (lines with 'Error'); a restore needs the dumped pids free and the same files in place.");
    }
}
