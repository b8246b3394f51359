using Sealpoint.Bench.Measuring;
using Sealpoint.Bench.Running;

namespace Sealpoint.Bench.Sections;

/// <summary>
/// Issue #6: whole checkpoints and restores of each workload by each contender, in two families so every comparison
/// is apples to apples: "process" (CRIU's command line on a plain process tree: plain criu, `sealpoint dump`, criu
/// with a post-dump action script) and "container" (a runc container from the busybox rootfs: plain runc,
/// sealpoint-runc, runc followed by the per-file script). Ratios are always to the plain checkpoint of the same family.
/// Contenders are interleaved within each repetition, so drift in machine load hits all of them alike.
/// </summary>
public sealed class SuiteBenchmark(BenchOptions options, Scratch scratch, Results results,
    IReadOnlyDictionary<string, IReadOnlyList<Contender>> families)
{
    public const string Section = "suite";
    private readonly RepetitionPolicy _policy = new(options, results, Section);

    public IReadOnlyList<WorkloadSpec> Workloads =>
        [.. options.Sizes.Select(s => new WorkloadSpec("memhog", s)), .. options.Trees.Select(t => new WorkloadSpec("proctree", t))];

    public void Run()
    {
        Console.WriteLine($"== suite (#6): {string.Join(", ", Workloads.Select(w => w.Name))}; families {string.Join(", ", families.Keys)}; " +
                          $"{options.Reps} repetitions{(options.Warmup ? " + warm-up" : "")}");
        foreach (var spec in Workloads)
            foreach (var (family, contenders) in families)
                RunFamily(spec, family, contenders);
        EvaluateTargets();
    }

    private void RunFamily(WorkloadSpec spec, string family, IReadOnlyList<Contender> contenders)
    {
        // Workload memory + its dump + an encrypted or sealed copy + headroom for staging.
        if (!Memory.Enough(((spec.MemoryMiB * 3L) << 20) + (512L << 20), out string why))
        {
            results.AddSkip(new Skip(Section, spec.Name, $"all ({family})", why));
            return;
        }
        var active = contenders.Where(c => !(c.SlowByNature && spec.IsTree && spec.Size > options.GpgMaxTree)).ToList();
        foreach (var c in contenders.Except(active))
            results.AddSkip(new Skip(Section, spec.Name, $"{c.Name} ({family})",
                $"tree of {spec.Size} processes > --gpg-max-tree {options.GpgMaxTree} (gpg costs ~0.25 s per file and direction; pass --gpg-max-tree {spec.Size} to include it)"));
        var broken = new HashSet<Contender>();
        Subject? subject = null;
        IDisposable? tracked = null;
        try
        {
            Console.WriteLine($"-- {spec.Name} / {family}");
            LoadLog.Sample($"{spec.Name}/{family}");
            for (int rep = options.Warmup ? 0 : 1; rep <= options.Reps; rep++)
            {
                foreach (var contender in active)
                {
                    if (broken.Contains(contender)) continue;
                    if (!_policy.ShouldRun(spec.Name, family, contender.Name, rep, contender.SlowByNature)) continue;
                    if (subject is null || !subject.IsRunning)
                    {
                        tracked?.Dispose();
                        subject = Start(spec, family);
                        var s = subject;
                        tracked = scratch.OnCleanup($"stop {spec.Name} ({family})", s.Dispose);
                    }
                    try
                    {
                        double took = Cycle(spec, family, contender, subject, rep);
                        _policy.Ran(spec.Name, family, contender.Name, rep, took);
                    }
                    catch (Exception e)
                    {
                        // One contender failing must not cost the others their figures: note it, restart the workload if needed.
                        broken.Add(contender);
                        int dropped = results.Discard(Section, spec.Name, family, contender.Name);
                        results.AddFailure($"suite {spec.Name} {family} {contender.Name} (rep {rep}; its {dropped} figures on this workload are discarded): {e.Message}");
                    }
                }
            }
            if (!spec.IsTree && subject is not null && subject.IsRunning)
            {
                subject.VerifyMemory();
                results.AddFact(new Fact(Section, $"{spec.Name} ({family}): memory verified", "every page intact after the last restore (memhog SIGUSR2 check)"));
            }
        }
        catch (Exception e)
        {
            results.AddFailure($"suite {spec.Name} {family}: {e.Message}");
        }
        finally
        {
            tracked?.Dispose();
        }
    }

    private Subject Start(WorkloadSpec spec, string family) => family switch
    {
        "process" => ProcessSubject.Start(spec, scratch.NewDir($"{spec.Name}-workload")),
        "container" => ContainerSubject.Start(spec),
        _ => throw new ArgumentException($"unknown family {family}"),
    };

    /// <summary>One checkpoint and one restore by one contender; returns the seconds both took.</summary>
    private double Cycle(WorkloadSpec spec, string family, Contender contender, Subject subject, int rep)
    {
        string images = scratch.NewDir($"{spec.Name}-{family}-images");
        string work = scratch.NewDir($"{spec.Name}-{family}-work");
        string restoreWork = scratch.NewDir($"{spec.Name}-{family}-restore-work");
        try
        {
            var checkpoint = contender.Checkpoint(subject, images, work);
            subject.AfterCheckpoint();
            var (bytes, files) = CoreBenchmark.DirectorySize(images);
            Record(spec, family, contender, "checkpoint", rep, checkpoint, bytes, files);
            var restore = contender.Restore(subject, images, restoreWork);
            Record(spec, family, contender, "restore", rep, restore, bytes, files);
            subject.AfterRestore();
            return checkpoint.Total + restore.Total;
        }
        finally
        {
            Scratch.Remove(images);
            Scratch.Remove(work);
            Scratch.Remove(restoreWork);
        }
    }

    private void Record(WorkloadSpec spec, string family, Contender c, string phase, int rep, Timing t, long bytes, int files)
    {
        results.Add(new Measurement
        {
            Section = Section, Workload = spec.Name, Family = family, Contender = c.Name, Phase = phase, Repetition = rep,
            Seconds = t.Total, Bytes = bytes, Files = files,
        });
        foreach (var (part, seconds) in t.Parts)
            results.Measurements.Add(new Measurement
            {
                Section = Section, Workload = spec.Name, Family = family, Contender = c.Name, Phase = $"{phase}: {part}", Repetition = rep,
                Seconds = seconds, Bytes = bytes, Files = files,
            });
    }

    private void EvaluateTargets()
    {
        foreach (var (family, contenders) in families)
        {
            var plain = contenders.FirstOrDefault(c => c.Kind == ContenderKind.Plain);
            var baselines = contenders.Where(c => c.Kind == ContenderKind.Baseline).ToList();
            foreach (var sp in contenders.Where(c => c.Kind == ContenderKind.Sealpoint))
            {
                if (plain is null) continue;
                CheckpointTargets(family, sp, plain, baselines);
                if (sp is StreamingDump streaming) StreamingTarget(family, streaming, plain);
                foreach (var spec in Workloads) RestoreTarget(family, spec, sp, plain);
            }
        }
    }

    private Summary? S(string workload, string family, Contender c, string phase) => results.Summarize(Section, workload, family, c.Name, phase);

    private void CheckpointTargets(string family, Contender sp, Contender plain, List<Contender> baselines)
    {
        const string memory = "memhog-1024", tree = "proctree-100";
        if (!options.Sizes.Contains(1024))
            results.AddTarget(new TargetResult(Section, $"1 GiB checkpoint, {sp.Name}", "≤ 1.25× plain; ≥ 2× faster than the fastest baseline",
                "not run", null, "the 1 GiB workload was not part of this run (--sizes)"));
        else
        {
            var s = S(memory, family, sp, "checkpoint");
            var p = S(memory, family, plain, "checkpoint");
            results.AddTarget(Ratio($"1 GiB checkpoint ≤ 1.25× plain, {sp.Name}", "≤ 1.25× " + plain.Name, s, p, r => r <= 1.25, $"× {plain.Name}"));
            var fastest = Fastest(memory, family, baselines, "checkpoint");
            results.AddTarget(Speedup($"1 GiB checkpoint ≥ 2× faster than fastest baseline, {sp.Name}", "≥ 2× faster than the fastest post-dump baseline",
                s, fastest, 2));
        }
        if (!options.Trees.Contains(100))
            results.AddTarget(new TargetResult(Section, $"100-process checkpoint, {sp.Name}", "≥ 5× faster than the fastest baseline; ≥ 100× faster than gpg",
                "not run", null, "the 100-process workload was not part of this run (--trees)"));
        else
        {
            var s = S(tree, family, sp, "checkpoint");
            results.AddTarget(Speedup($"100-process checkpoint ≥ 5× faster than fastest baseline, {sp.Name}", "≥ 5× faster than the fastest post-dump baseline",
                s, Fastest(tree, family, baselines, "checkpoint"), 5));
            var gpg = baselines.FirstOrDefault(b => b.Name.StartsWith("gpg"));
            var g = gpg is null ? null : S(tree, family, gpg, "checkpoint");
            results.AddTarget(Speedup($"100-process checkpoint ≥ 100× faster than gpg, {sp.Name}", "≥ 100× faster than gpg post-dump",
                s, g is null ? null : (gpg!.Name, g), 100));
        }
    }

    /// <summary>Issue #5: the streamed 1 GiB dump at most 1.15× CRIU's plain dump, with the streamer's peak RSS under 64 MiB.</summary>
    private void StreamingTarget(string family, StreamingDump sp, Contender plain)
    {
        const string memory = "memhog-1024";
        const string name = "1 GiB streamed dump ≤ 1.15× plain, streamer peak RSS < 64 MiB";
        const string requirement = "≤ 1.15× criu (plain) dump; peak RSS < 64 MiB";
        if (!options.Sizes.Contains(1024) || options.Quick)
        {
            results.AddTarget(new TargetResult(Section, name, requirement, "not run", null, "the 1 GiB workload was not part of this run") { Issue = "#5" });
            return;
        }
        var s = S(memory, family, sp, "checkpoint");
        var p = S(memory, family, plain, "checkpoint");
        if (s is null || p is null || !sp.PeakRssBytes.TryGetValue(memory, out long peak))
        {
            results.AddTarget(new TargetResult(Section, name, requirement, "no data", null, "a contender failed, was skipped or is not available") { Issue = "#5" });
            return;
        }
        double r = s.Median / p.Median;
        results.AddTarget(new TargetResult(Section, name, requirement,
            $"{Format.Ratio(r)} ({Format.Seconds(s.Median)} vs {Format.Seconds(p.Median)}, medians); peak RSS {peak / 1048576.0:F1} MiB (largest of all dumps)",
            r <= 1.15 && peak < 64L << 20) { Issue = "#5" });
    }

    private void RestoreTarget(string family, WorkloadSpec spec, Contender sp, Contender plain)
    {
        if (options.Quick)
        {
            results.AddTarget(new TargetResult(Section, $"{spec.Name} restore ≤ 1.25× plain, {sp.Name}", "≤ 1.25× " + plain.Name + " restore",
                "quick run", null, "targets are not evaluated on a --quick run (one repetition of tiny workloads)"));
            return;
        }
        var s = S(spec.Name, family, sp, "restore");
        var p = S(spec.Name, family, plain, "restore");
        results.AddTarget(Ratio($"{spec.Name} restore ≤ 1.25× plain, {sp.Name}", "≤ 1.25× " + plain.Name + " restore", s, p, r => r <= 1.25, $"× {plain.Name}"));
    }

    private (string Name, Summary S)? Fastest(string workload, string family, List<Contender> baselines, string phase) =>
        baselines.Select(b => (b.Name, S: S(workload, family, b, phase))).Where(x => x.S is not null)
            .Select(x => (x.Name, x.S!)).OrderBy(x => x.Item2.Median).Cast<(string, Summary)?>().FirstOrDefault();

    private static TargetResult Ratio(string name, string requirement, Summary? s, Summary? plain, Func<double, bool> ok, string unit)
    {
        if (s is null || plain is null) return new TargetResult(Section, name, requirement, "no data", null, "a contender failed, was skipped or is not available");
        double r = s.Median / plain.Median;
        return new TargetResult(Section, name, requirement, $"{Format.Ratio(r)} ({Format.Seconds(s.Median)} vs {Format.Seconds(plain.Median)}, medians)", ok(r));
    }

    private static TargetResult Speedup(string name, string requirement, Summary? s, (string Name, Summary S)? baseline, double factor)
    {
        if (s is null || baseline is null) return new TargetResult(Section, name, requirement, "no data", null, "a contender failed, was skipped or is not available");
        double r = baseline.Value.S.Median / s.Median;
        return new TargetResult(Section, name, requirement,
            $"{Format.Ratio(r)} faster ({Format.Seconds(s.Median)} vs {baseline.Value.Name} {Format.Seconds(baseline.Value.S.Median)}, medians)", r >= factor);
    }
}
