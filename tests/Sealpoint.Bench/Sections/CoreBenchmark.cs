using System.Diagnostics;
using Sealpoint.Bench.Measuring;
using Sealpoint.Bench.Running;
using Sealpoint.Core.Checkpoint;
using Sealpoint.TestSupport;

namespace Sealpoint.Bench.Sections;

/// <summary>
/// Issue #2: one real CRIU dump of a memory-heavy process and one of a process tree, then, on that very directory,
/// CRIU's own dump time beside Sealpoint's seal (library: to a new directory and in place; CLI wall time including
/// .NET start-up), open, and the per-file openssl/age/gpg scripts. Each repetition ends with a CRIU restore from the
/// opened checkpoint, so every repetition also proves the round trip.
/// </summary>
public sealed class CoreBenchmark(BenchOptions options, Scratch scratch, Results results, SealpointSetup sealpoint,
    IReadOnlyDictionary<string, BaselineTool> baselines)
{
    public const string Section = "core";
    public const string Family = "process";

    // Contender names (stable: the report and the smoke test look them up).
    public const string CriuDump = "criu dump";
    public const string CriuRestore = "criu restore";
    public const string SealDirectory = "seal to new dir (lib)";
    public const string SealInPlace = "seal in place (lib)";
    public const string OpenLibrary = "open (lib)";
    public const string SealCli = "sealpoint seal (CLI)";
    public const string OpenCli = "sealpoint open (CLI)";

    private readonly RepetitionPolicy _policy = new(options, results, Section);

    public string MemoryWorkload => $"memhog-{options.CoreSize}";
    public string TreeWorkload => $"proctree-{options.CoreTree}";

    public void Run()
    {
        Console.WriteLine($"== core (#2): {MemoryWorkload} and {TreeWorkload}, {options.CoreReps} repetitions{(options.Warmup ? " + warm-up" : "")}");
        RunWorkload(MemoryWorkload, dir => Workload.StartMemHog(options.CoreSize, "sealpoint-bench-secret", dir), options.CoreSize, isTree: false);
        RunWorkload(TreeWorkload, dir => Workload.StartProcTree(options.CoreTree, dir), 0, isTree: true);
        EvaluateTargets();
    }

    private void RunWorkload(string name, Func<string, Workload> start, int mib, bool isTree)
    {
        if (!Memory.Enough(mib * 4L << 20, out string why))
        {
            results.AddSkip(new Skip(Section, name, "all", why));
            return;
        }
        LoadLog.Sample($"core {name}");
        Workload? workload = null;
        IDisposable? tracked = null;
        try
        {
            workload = start(scratch.NewDir($"{name}-workload"));
            tracked = scratch.OnCleanup($"kill {name}", () => workload.Kill());
            string logs = scratch.NewDir($"{name}-logs");
            int first = options.Warmup ? 0 : 1;
            for (int rep = first; rep <= options.CoreReps; rep++) Repetition(name, workload, logs, rep, isTree);
            if (!isTree)
            {
                // Every page intact after all the dump/seal/open/restore round trips (memhog exits 3 otherwise).
                workload.VerifyMemory();
                results.AddFact(new Fact(Section, $"{name}: memory verified", "every page intact after the last restore (memhog SIGUSR2 check)"));
            }
        }
        catch (Exception e)
        {
            results.AddFailure($"core {name}: {e.Message}");
        }
        finally
        {
            tracked?.Dispose();
        }
    }

    private void Repetition(string name, Workload workload, string logs, int rep, bool isTree)
    {
        string plain = scratch.NewDir($"{name}-dump");
        var tree = Pids.Tree(workload.Pid);
        var dump = TimedCriu.Dump(workload.Pid, plain, logs);
        Pids.WaitReaped(tree, TimeSpan.FromSeconds(60));
        var (bytes, files) = DirectorySize(plain);
        Record(name, CriuDump, "dump", rep, dump.Elapsed, bytes, files);

        // Library, to a new directory, then opened (verify + decrypt) into another.
        string sealedDir = scratch.NewPath($"{name}-sealed");
        var clock = Stopwatch.StartNew();
        CheckpointSealer.SealDirectory(plain, sealedDir, sealpoint.SealOptions);
        Record(name, SealDirectory, "seal", rep, clock.Elapsed, bytes, files);
        using (var identity = sealpoint.LoadIdentity())
        {
            string opened = scratch.NewPath($"{name}-opened");
            clock.Restart();
            using (var checkpoint = SealedCheckpoint.Open(sealedDir, identity)) checkpoint.DecryptTo(opened);
            Record(name, OpenLibrary, "open", rep, clock.Elapsed, bytes, files);
            Scratch.Remove(opened);
        }
        Scratch.Remove(sealedDir);

        // The CLI as a user runs it: process start, .NET start-up, key loading, sealing; then opening.
        string cliSealed = scratch.NewPath($"{name}-cli-sealed");
        var seal = Cli(["seal", plain, "--out", cliSealed, "-r", SealpointSetup.RecipientName, "--no-sync"]);
        Record(name, SealCli, "seal", rep, seal.Elapsed, bytes, files, "wall time incl. process and .NET start-up");
        string cliOpened = scratch.NewPath($"{name}-cli-opened");
        var open = Cli(["open", cliSealed, "--key", sealpoint.KeyPath, "--out", cliOpened]);
        Record(name, OpenCli, "open", rep, open.Elapsed, bytes, files, "wall time incl. process and .NET start-up");
        Scratch.Remove(cliSealed);
        Scratch.Remove(cliOpened);

        // The paper's baselines on the same directory: one process per file, sequentially.
        foreach (var tool in baselines.Values)
        {
            bool slow = tool.Name == "gpg";
            if (slow && isTree && options.CoreTree > options.GpgMaxTree)
            {
                results.AddSkip(new Skip(Section, name, "gpg", $"tree of {options.CoreTree} processes > --gpg-max-tree {options.GpgMaxTree}"));
                continue;
            }
            if (!_policy.ShouldRun(name, Family, tool.Name, rep, slow)) continue;
            string encrypted = scratch.NewDir($"{name}-{tool.Name}");
            var took = tool.EncryptTo(plain, encrypted);
            Record(name, tool.Name, "encrypt", rep, took, bytes, files, "per-file script, encrypt-to a new dir");
            _policy.Ran(name, Family, tool.Name, rep, took.TotalSeconds);
            Scratch.Remove(encrypted);
        }

        // In place (fastest; overwrites the plaintext), then opened and restored: the round trip must work.
        clock.Restart();
        CheckpointSealer.SealFilesInPlace(plain, sealpoint.SealOptions);
        Record(name, SealInPlace, "seal", rep, clock.Elapsed, bytes, files);
        string reopened = scratch.NewPath($"{name}-reopened");
        using (var identity = sealpoint.LoadIdentity())
        using (var checkpoint = SealedCheckpoint.Open(plain, identity))
            checkpoint.DecryptTo(reopened);
        Scratch.Remove(plain);
        var restore = TimedCriu.Restore(reopened, logs);
        Record(name, CriuRestore, "restore", rep, restore.Elapsed, bytes, files);
        Scratch.Remove(reopened);
        workload.WaitForProgress(1, TimeSpan.FromSeconds(60));
    }

    private ProcessResult Cli(IReadOnlyList<string> args)
    {
        var result = ProcessRunner.RunUnchecked(SealpointSetup.Cli, args, new RunOptions { Timeout = TimeSpan.FromMinutes(10), Environment = sealpoint.CliEnvironment });
        if (!result.Succeeded) throw new InvalidOperationException($"sealpoint CLI failed: {result.Describe()}");
        return result;
    }

    private void Record(string workload, string contender, string phase, int rep, TimeSpan took, long bytes, int files, string? note = null) =>
        results.Add(new Measurement
        {
            Section = Section, Workload = workload, Family = Family, Contender = contender, Phase = phase, Repetition = rep,
            Seconds = took.TotalSeconds, Bytes = bytes, Files = files, Note = note,
        });

    public static (long Bytes, int Files) DirectorySize(string dir)
    {
        long bytes = 0;
        int files = 0;
        foreach (var f in new DirectoryInfo(dir).EnumerateFiles())
        {
            if (f.LinkTarget is not null) continue;
            bytes += f.Length;
            files++;
        }
        return (bytes, files);
    }

    private void EvaluateTargets()
    {
        const string NotDefault = "targets are defined for a 1 GiB dump and a 100-process tree; this run used other sizes";
        var dump = results.Summarize(Section, MemoryWorkload, Family, CriuDump, "dump");
        foreach (var contender in new[] { SealInPlace, SealDirectory })
        {
            var seal = results.Summarize(Section, MemoryWorkload, Family, contender, "seal");
            string measured = dump is null || seal is null ? "no data"
                : $"{Format.Seconds(seal.Median)} = {seal.Median / dump.Median * 100:0}% of CRIU's {Format.Seconds(dump.Median)} (medians)";
            bool? met = options.CoreSize != 1024 || dump is null || seal is null ? null : seal.Median <= 0.25 * dump.Median;
            results.AddTarget(new TargetResult(Section, $"1 GiB seal cost, {contender}", "≤ 25% of CRIU's own dump time", measured, met,
                options.CoreSize != 1024 ? NotDefault : dump is null || seal is null ? "a step failed or was skipped" : null));
        }
        foreach (var contender in new[] { SealInPlace, SealDirectory })
        {
            var seal = results.Summarize(Section, TreeWorkload, Family, contender, "seal");
            string measured = seal is null ? "no data" : $"{Format.Seconds(seal.Median)} (median; max {Format.Seconds(seal.Max)})";
            bool? met = options.CoreTree != 100 || seal is null ? null : seal.Median < 0.060;
            results.AddTarget(new TargetResult(Section, $"100-process tree seal, {contender}", "< 60 ms", measured, met,
                options.CoreTree != 100 ? NotDefault : seal is null ? "a step failed or was skipped" : null));
        }
    }
}

/// <summary>Free memory checks: a workload must fit with its dumps (tmpfs pages are memory too).</summary>
public static class Memory
{
    public static bool Enough(long needed, out string why)
    {
        long available = MachineInfo.MemInfo("MemAvailable") ?? long.MaxValue;
        if (available >= needed) { why = ""; return true; }
        why = $"needs about {Format.Bytes(needed)} of memory (workload plus its dumps on tmpfs), only {Format.Bytes(available)} available";
        return false;
    }
}
