using Sealpoint.TestSupport;

namespace Sealpoint.Bench.Running;

/// <summary>
/// CRIU's command line, timed, with CRIU's default log level (TestSupport's Criu helper logs at -v4, which costs
/// time on large trees). Logs go to a folder outside the images, so per-file scripts never see them.
/// The time is the wall time of the criu process alone: waiting for pid 1 to reap the dumped tree (needed before a
/// restore with the same pids) comes after and is not counted.
/// </summary>
public static class TimedCriu
{
    public static ProcessResult Dump(int pid, string imagesDir, string logDir, IReadOnlyList<string>? extraArgs = null,
        IReadOnlyDictionary<string, string?>? environment = null)
    {
        Directory.CreateDirectory(imagesDir);
        string log = Path.Combine(logDir, $"dump-{Guid.NewGuid().ToString("N")[..6]}.log");
        var args = new List<string> { "dump", "-t", pid.ToString(), "-D", imagesDir, "-o", log };
        if (extraArgs is not null) args.AddRange(extraArgs);
        var result = ProcessRunner.RunUnchecked(Tools.Require("criu"), args,
            new RunOptions { Timeout = TimeSpan.FromMinutes(20), Environment = environment });
        if (!result.Succeeded) throw Failure("criu dump", result, log);
        return result;
    }

    /// <summary>criu restore -d; the restored tree's output goes to a file (it must not inherit our pipes).</summary>
    public static ProcessResult Restore(string imagesDir, string logDir)
    {
        string id = Guid.NewGuid().ToString("N")[..6];
        string log = Path.Combine(logDir, $"restore-{id}.log");
        string output = Path.Combine(logDir, $"restore-{id}.out");
        var result = ProcessRunner.RunUnchecked(Tools.Require("criu"), ["restore", "-D", imagesDir, "-d", "-o", log],
            new RunOptions { Timeout = TimeSpan.FromMinutes(20), OutputFile = output });
        if (!result.Succeeded) throw Failure("criu restore", result, log, output);
        return result;
    }

    public static Exception Failure(string what, ProcessResult result, string log, string? output = null)
    {
        string outText = output is not null && File.Exists(output) ? $"\n--- output ---\n{FileTail.Read(output, 20)}" : "";
        return new InvalidOperationException(
            $"{what} failed: {result.Describe()}{outText}\n--- last lines of {log} ---\n{(File.Exists(log) ? FileTail.Read(log, 30) : "(no log)")}\n" +
            "fix: read CRIU's errors above; check `criu check` and that packaging/install.sh ran.");
    }
}
