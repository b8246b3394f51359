namespace Sealpoint.TestSupport;

/// <summary>
/// A running test workload (tests/workloads: secretholder, memhog, proctree) started so that
/// `criu dump -t PID` can take it: a session and process-group leader of its own (setsid), no
/// controlling terminal (so no --shell-job needed), stdin /dev/null and stdout/stderr to a file
/// (never pipes to the test process, which CRIU would have to treat as external). It is not a child
/// of the test process, exactly like a tree CRIU restores with -d.
/// Its files live in the folder given at start: counter (see workload.h), output.log, pid.
/// </summary>
public sealed class Workload : IDisposable
{
    public string Name { get; }
    public int Pid { get; }
    public string Directory { get; }
    public string CounterFile => System.IO.Path.Combine(Directory, "counter");
    public string OutputFile => System.IO.Path.Combine(Directory, "output.log");

    /// <summary>CRIU needs --shell-job for it: false, it has its own session and no terminal.</summary>
    public bool NeedsShellJob => false;

    private Workload(string name, int pid, string directory) => (Name, Pid, Directory) = (name, pid, directory);

    /// <summary>secretholder SECRET: keeps SECRET in its heap.</summary>
    public static Workload StartSecretHolder(string secret, string directory) =>
        Start("secretholder", [secret], directory, TimeSpan.FromSeconds(15));

    /// <summary>memhog MIB SECRET: MIB MiB of resident random memory with SECRET inside; SIGUSR1
    /// re-randomizes <paramref name="modifyPercent"/> % of it (see <see cref="ModifyMemory"/>).</summary>
    public static Workload StartMemHog(int mib, string secret, string directory, int modifyPercent = 5) =>
        Start("memhog", [mib.ToString(), secret, "{counter}", modifyPercent.ToString()], directory,
            TimeSpan.FromSeconds(15 + mib / 100.0));

    /// <summary>proctree N: N processes in total (a counting parent and N-1 sleeping children).</summary>
    public static Workload StartProcTree(int processes, string directory) =>
        Start("proctree", [processes.ToString()], directory, TimeSpan.FromSeconds(15));

    /// <summary>Starts a workload and waits for its first counter value. "{counter}" in args is
    /// replaced by the counter file path; without it the counter file is appended as last argument.</summary>
    public static Workload Start(string name, IReadOnlyList<string> args, string directory, TimeSpan startTimeout)
    {
        var binary = Tools.Workload(name);
        var setsid = Tools.Require("setsid");
        System.IO.Directory.CreateDirectory(directory);
        var counter = System.IO.Path.Combine(directory, "counter");
        var output = System.IO.Path.Combine(directory, "output.log");
        var pidFile = System.IO.Path.Combine(directory, "pid");
        File.Delete(pidFile);
        var programArgs = args.Contains("{counter}") ? args.Select(a => a == "{counter}" ? counter : a).ToList() : [.. args, counter];

        // setsid --fork: new session without a terminal, reparented away from the test process.
        // The shell records its pid, then execs the workload in place (same pid).
        const string script = "echo $$ >\"$1.tmp\" && mv \"$1.tmp\" \"$1\" && out=$2 && shift 2 && exec \"$@\" </dev/null >\"$out\" 2>&1";
        ProcessRunner.Run(setsid, ["--fork", "/bin/sh", "-c", script, "sh", pidFile, output, binary, .. programArgs]);

        Poll.Until(() => File.Exists(pidFile), TimeSpan.FromSeconds(10), () => $"{name} to write {pidFile}");
        var workload = new Workload(name, int.Parse(File.ReadAllText(pidFile).Trim()), directory);
        try
        {
            Poll.Until(() => workload.TryReadCounter() >= 1 || !Pids.IsAlive(workload.Pid), startTimeout,
                () => $"{name} (pid {workload.Pid}) to publish its first counter value{workload.OutputTail()}");
            if (!Pids.IsAlive(workload.Pid))
                throw new InvalidOperationException($"{name} exited right after start{workload.OutputTail()}");
        }
        catch
        {
            workload.Dispose();
            throw;
        }
        return workload;
    }

    /// <summary>The latest counter value, or null while the file is missing or empty.</summary>
    public long? TryReadCounter()
    {
        try
        {
            var text = File.ReadAllText(CounterFile).Trim();
            return long.TryParse(text, out var value) ? value : null;
        }
        catch (FileNotFoundException) { return null; }
        catch (DirectoryNotFoundException) { return null; }
    }

    public long ReadCounter() =>
        TryReadCounter() ?? throw new InvalidOperationException($"{Name}: no counter value in {CounterFile}{OutputTail()}");

    /// <summary>Waits until the counter reaches at least <paramref name="value"/>; returns the value seen.</summary>
    public long WaitForCounter(long value, TimeSpan? timeout = null)
    {
        long seen = 0;
        Poll.Until(() => (seen = TryReadCounter() ?? 0) >= value, timeout ?? TimeSpan.FromSeconds(20),
            () => $"{Name} (pid {Pid}, {StateText()}) to count to {value}; last value {seen}{OutputTail()}");
        return seen;
    }

    /// <summary>Waits until the counter has grown by <paramref name="steps"/> from now; returns the value seen.</summary>
    public long WaitForProgress(int steps = 1, TimeSpan? timeout = null) => WaitForCounter((TryReadCounter() ?? 0) + steps, timeout);

    public bool IsAlive => Pids.IsAlive(Pid);

    /// <summary>memhog only: re-randomize its configured share of memory and wait until done.</summary>
    public void ModifyMemory() => SignalAndWait(Native.SIGUSR1);

    /// <summary>memhog only: check every page against its checksums; throws if memhog found damage.</summary>
    public void VerifyMemory()
    {
        SignalAndWait(Native.SIGUSR2);
        if (!IsAlive) throw new InvalidOperationException($"memhog found its memory changed and exited{OutputTail()}");
    }

    /// <summary>Sends a signal to the workload's main process.</summary>
    public void Signal(int signal)
    {
        if (!Native.Kill(Pid, signal)) throw new InvalidOperationException($"{Name} (pid {Pid}) is not running{OutputTail()}");
    }

    // Workloads act on signals inside their loop before publishing the next value (workload.h).
    private void SignalAndWait(int signal)
    {
        var before = ReadCounter();
        Signal(signal);
        Poll.Until(() => (TryReadCounter() ?? 0) >= before + 2 || !IsAlive, TimeSpan.FromSeconds(120),
            () => $"{Name} to handle signal {signal}{OutputTail()}");
    }

    /// <summary>SIGKILLs the whole process group and waits until every process is gone and reaped
    /// (so CRIU can restore the same pids).</summary>
    public void Kill(TimeSpan? timeout = null)
    {
        var tree = Pids.Tree(Pid);
        Native.Kill(-Pid, Native.SIGKILL); // setsid made Pid the group id
        foreach (var p in tree) Native.Kill(p, Native.SIGKILL);
        Pids.WaitReaped(tree.Append(Pid), timeout ?? TimeSpan.FromSeconds(30));
    }

    /// <summary>Last lines of the workload's stdout/stderr, prefixed for messages.</summary>
    public string OutputTail() => File.Exists(OutputFile) ? $"\n--- {OutputFile} (last lines) ---\n{FileTail.Read(OutputFile, 15)}" : "";

    private string StateText() => Pids.State(Pid) is { } s ? $"state {s}" : "not running";

    /// <summary>Kills it without waiting, if the pid still belongs to this workload.</summary>
    public void Dispose()
    {
        if (Pids.IsAlive(Pid) && Pids.Comm(Pid) == Name)
        {
            Native.Kill(-Pid, Native.SIGKILL);
            Native.Kill(Pid, Native.SIGKILL);
        }
    }
}
