using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Sealpoint.Bench.Measuring;
using Sealpoint.Bench.Running;
using Sealpoint.Bench.Sections;

namespace Sealpoint.Bench.Reporting;

/// <summary>What the report needs besides the measurements.</summary>
public sealed record RunInfo(
    string CommandLine, DateTimeOffset Started, DateTimeOffset Finished, MachineInfo Machine, string LoadBefore, string LoadAfter,
    BenchOptions Options, IReadOnlyList<(string Name, string Describe)> CoreSteps, string Programs, string CoreMemoryWorkload, string CoreTreeWorkload,
    IReadOnlyList<string> SuiteWorkloads, IReadOnlyDictionary<string, IReadOnlyList<Contender>> Families,
    IReadOnlyList<BaselineTool> Baselines, IReadOnlyList<(DateTimeOffset At, string Where, string Load)> LoadSamples);

/// <summary>Writes report.md, core.svg, suite.svg, measurements.csv and results.json into the report folder.</summary>
public static class ReportWriter
{
    public const string ReportFile = "report.md", CoreChart = "core.svg", SuiteChart = "suite.svg", CsvFile = "measurements.csv", JsonFile = "results.json";

    public static void Write(string dir, RunInfo run, Results results)
    {
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, CsvFile), Csv(results));
        File.WriteAllText(Path.Combine(dir, JsonFile), Json(run, results));
        bool core = results.Measurements.Any(m => m.Section == CoreBenchmark.Section);
        bool suite = results.Measurements.Any(m => m.Section == SuiteBenchmark.Section);
        if (core) File.WriteAllText(Path.Combine(dir, CoreChart), CoreSvg(run, results));
        if (suite) File.WriteAllText(Path.Combine(dir, SuiteChart), SuiteSvg(run, results));
        File.WriteAllText(Path.Combine(dir, ReportFile), Markdown(run, results, core, suite));
    }

    // ---------------- Markdown ----------------

    public static string Markdown(RunInfo run, Results results, bool core, bool suite)
    {
        var md = new StringBuilder();
        var m = run.Machine;
        md.AppendLine("# Sealpoint benchmark report").AppendLine();
        md.AppendLine($"Run {run.Started:yyyy-MM-dd HH:mm zzz} to {run.Finished:HH:mm zzz} ({(run.Finished - run.Started).TotalMinutes:0.#} min), command `{run.CommandLine}`.");
        md.AppendLine($"Load average (1/5/15 min) at start {run.LoadBefore}, at end {run.LoadAfter} on {m.Cores} cores" +
                      (IsBusy(run) ? " — **other work competed for the machine during this run: figures are noisy**." : " (no sign of competing work)."));
        if (run.LoadSamples.Count > 0)
            md.AppendLine("Load average when each part started (it includes the benchmark's own work, up to about one per core): " +
                          string.Join("; ", run.LoadSamples.Select(l => $"{l.Where} {l.At:HH:mm} {l.Load}")) + ".");
        if (run.Options.Quick) md.AppendLine().AppendLine("**Quick run** (`--quick`): tiny workloads, one repetition; it proves the benchmark works, its figures mean little and targets are not evaluated.");
        md.AppendLine();
        md.AppendLine("## Machine").AppendLine();
        md.AppendLine("| | |").AppendLine("|---|---|");
        md.AppendLine($"| CPU | {m.Cpu} |").AppendLine($"| Cores | {m.Cores} |").AppendLine($"| Memory | {Format.Bytes(m.MemoryBytes)} |");
        md.AppendLine($"| Kernel | {m.Kernel} |").AppendLine($"| Guest memory | {m.MemoryReporting} |").AppendLine($"| OS | {m.Os} |").AppendLine($"| CRIU | {m.Criu} |").AppendLine($"| runc | {m.Runc} |");
        md.AppendLine($"| .NET | {m.DotNet} |").AppendLine($"| openssl (the baselines') | {m.OpenSsl} |").AppendLine($"| gpg | {m.Gpg} |").AppendLine($"| age | {m.Age} |");
        md.AppendLine($"| Dumps written to | {m.WorkDir} ({m.WorkDirFileSystem}) |");
        md.AppendLine($"| Sealpoint programs | {run.Programs} |").AppendLine();
        md.AppendLine("How to read: every time is the **median** of the counted repetitions, with the spread as min–max; a warm-up");
        md.AppendLine("repetition runs first and is not counted (this VM is slow on its first touch of fresh memory). n is the number");
        md.AppendLine("of counted repetitions. Ratios divide medians. Raw figures, warm-ups included: `measurements.csv`, `results.json`.").AppendLine();

        md.AppendLine("## Targets").AppendLine();
        if (results.Targets.Count == 0) md.AppendLine("No target was evaluated in this run.").AppendLine();
        else
        {
            md.AppendLine("| Issue | Target | Required | Measured | Verdict |").AppendLine("|---|---|---|---|---|");
            foreach (var t in results.Targets)
                md.AppendLine($"| {t.Issue ?? (t.Section == CoreBenchmark.Section ? "#2" : "#6")} | {t.Name} | {t.Requirement} | {t.Measured} | **{t.Verdict}**{(t.Reason is null ? "" : $" ({t.Reason})")} |");
            md.AppendLine();
        }

        if (core) CoreSection(md, run, results);
        if (suite) SuiteSection(md, run, results);

        md.AppendLine("## Runtime pass-through and registry push").AppendLine();
        var facts = results.Facts.Where(f => f.Section is "passthrough" or "oci").ToList();
        if (facts.Count == 0) md.AppendLine("Not measured in this run (see below).").AppendLine();
        else
        {
            md.AppendLine("| Figure | Value | Note |").AppendLine("|---|---|---|");
            foreach (var f in facts) md.AppendLine($"| {f.Name} | {f.Value} | {f.Note ?? ""} |");
            md.AppendLine();
        }

        md.AppendLine("## Skipped, not available, failed").AppendLine();
        if (results.Skips.Count == 0 && results.Failures.Count == 0) md.AppendLine("Nothing was skipped and nothing failed.").AppendLine();
        else
        {
            if (results.Skips.Count > 0)
            {
                md.AppendLine("| Section | Workload | What | Why |").AppendLine("|---|---|---|---|");
                foreach (var s in results.Skips) md.AppendLine($"| {s.Section} | {s.Workload} | {s.Contender} | {s.Reason} |");
                md.AppendLine();
            }
            foreach (var f in results.Failures) md.AppendLine($"- **failed**: {OneLine(f)}");
            if (results.Failures.Count > 0) md.AppendLine();
        }
        var otherFacts = results.Facts.Where(f => f.Section is not ("passthrough" or "oci")).ToList();
        if (otherFacts.Count > 0)
        {
            md.AppendLine("## Checks").AppendLine();
            foreach (var f in otherFacts) md.AppendLine($"- {f.Name}: {f.Value}");
            md.AppendLine();
        }

        md.AppendLine("## Exact commands").AppendLine();
        md.AppendLine("Core section (same dump directory for every step):").AppendLine();
        foreach (var (name, describe) in run.CoreSteps) md.AppendLine($"- **{name}**: {describe}");
        md.AppendLine().AppendLine("Suite contenders:").AppendLine();
        foreach (var (family, contenders) in run.Families)
            foreach (var c in contenders) md.AppendLine($"- **{c.Name}** ({family}): {c.Describe}");
        md.AppendLine().AppendLine("Per-file baseline tools (one process per file, sequentially):").AppendLine();
        foreach (var b in run.Baselines) md.AppendLine($"- {b.Name}: encrypt `{b.EncryptCommand}`; decrypt `{b.DecryptCommand}`");
        md.AppendLine();
        return md.ToString();
    }

    private static void CoreSection(StringBuilder md, RunInfo run, Results results)
    {
        md.AppendLine("## Issue #2: sealing beside CRIU's own dump").AppendLine();
        md.AppendLine("Each repetition dumps the running workload with `criu dump`, then runs every step on that same image directory;");
        md.AppendLine("it ends with `criu restore` from the opened (decrypted) checkpoint, so every repetition is also a round trip.");
        md.AppendLine("\"lib\" = in-process through Sealpoint.Core (no process start); \"CLI\" = wall time of the `sealpoint` program,");
        md.AppendLine(".NET start-up included. Baselines encrypt every file into a new folder, one process per file.").AppendLine();
        foreach (var workload in new[] { run.CoreMemoryWorkload, run.CoreTreeWorkload })
        {
            var dump = results.Summarize(CoreBenchmark.Section, workload, CoreBenchmark.Family, CoreBenchmark.CriuDump, "dump");
            var any = results.Measurements.FirstOrDefault(x => x.Section == CoreBenchmark.Section && x.Workload == workload && x.Bytes > 0);
            md.AppendLine($"### {workload}" + (any is null ? "" : $" — dump of {Format.Bytes(any.Bytes)} in {any.Files} files")).AppendLine();
            md.AppendLine("| Step | Median | Spread (min–max) | IQR | n | × CRIU dump | Throughput |").AppendLine("|---|---:|---:|---:|---:|---:|---:|");
            foreach (var (contender, phase) in CoreRows(run))
            {
                var s = results.Summarize(CoreBenchmark.Section, workload, CoreBenchmark.Family, contender, phase);
                if (s is null)
                {
                    md.AppendLine($"| {contender} | not run | | | 0 | | |");
                    continue;
                }
                string ratio = dump is null ? "" : Format.Ratio(s.Median / dump.Median);
                // Throughput only means something for the memory dump; a tree's few MB are dominated by per-file costs.
                string throughput = any is { Bytes: >= 64L << 20 } ? Format.Throughput(any.Bytes, s.Median) : "—";
                md.AppendLine($"| {contender} | {Format.Seconds(s.Median)} | {Spread(s)} | {(s.Count < 3 ? "" : $"{Format.Seconds(s.Q1)}–{Format.Seconds(s.Q3)}")} | {s.Count} | {ratio} | {throughput} |");
            }
            md.AppendLine();
        }
        md.AppendLine($"![Issue #2: seal and baselines beside CRIU's dump]({CoreChart})").AppendLine();
    }

    public static IEnumerable<(string Contender, string Phase)> CoreRows(RunInfo run) =>
        new[]
        {
            (CoreBenchmark.CriuDump, "dump"), (CoreBenchmark.SealInPlace, "seal"), (CoreBenchmark.SealDirectory, "seal"), (CoreBenchmark.OpenLibrary, "open"),
            (CoreBenchmark.SealCli, "seal"), (CoreBenchmark.OpenCli, "open"), (CoreBenchmark.CriuRestore, "restore"),
        }.Concat(run.Baselines.Select(b => (b.Name, "encrypt")));

    private static void SuiteSection(StringBuilder md, RunInfo run, Results results)
    {
        md.AppendLine("## Issue #6: whole checkpoints and restores").AppendLine();
        md.AppendLine("Two families, so each comparison is apples to apples: **process** = CRIU's command line on a plain process tree");
        md.AppendLine("(started with setsid), **container** = a runc container from the busybox rootfs running the same workload.");
        md.AppendLine("Ratios are to the plain checkpoint (or restore) of the same family and workload. Checkpoint = until the encrypted");
        md.AppendLine("checkpoint is complete; restore = decrypt + restore until the runtime returns with the workload running.").AppendLine();
        foreach (var workload in run.SuiteWorkloads)
        {
            var any = results.Measurements.FirstOrDefault(x => x.Section == SuiteBenchmark.Section && x.Workload == workload && x.Bytes > 0 && x.Contender.Contains("plain"));
            md.AppendLine($"### {workload}" + (any is null ? "" : $" — plain checkpoint of {Format.Bytes(any.Bytes)} in {any.Files} files")).AppendLine();
            md.AppendLine("| Family | Contender | Checkpoint | min–max | × plain | Restore | min–max | × plain | n | Where the time goes (medians) |");
            md.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---|");
            foreach (var (family, contenders) in run.Families)
            {
                var plain = contenders.FirstOrDefault(c => c.Kind == ContenderKind.Plain);
                var pc = plain is null ? null : results.Summarize(SuiteBenchmark.Section, workload, family, plain.Name, "checkpoint");
                var pr = plain is null ? null : results.Summarize(SuiteBenchmark.Section, workload, family, plain.Name, "restore");
                foreach (var c in contenders)
                {
                    var sc = results.Summarize(SuiteBenchmark.Section, workload, family, c.Name, "checkpoint");
                    var sr = results.Summarize(SuiteBenchmark.Section, workload, family, c.Name, "restore");
                    string name = c.Kind == ContenderKind.Sealpoint ? $"**{c.Name}**" : c.Name;
                    if (sc is null && sr is null)
                    {
                        md.AppendLine($"| {family} | {name} | not run | | | | | | 0 | see skipped/failed |");
                        continue;
                    }
                    md.AppendLine($"| {family} | {name} | {Med(sc)} | {Spread(sc)} | {RatioOf(sc, pc)} | {Med(sr)} | {Spread(sr)} | {RatioOf(sr, pr)} | {sc?.Count ?? 0} | {Parts(results, workload, family, c.Name)} |");
                }
            }
            md.AppendLine();
        }
        md.AppendLine($"![Issue #6: checkpoint and restore per contender]({SuiteChart})").AppendLine();
    }

    private static string Parts(Results results, string workload, string family, string contender)
    {
        var phases = results.Measurements.Where(x => x.Section == SuiteBenchmark.Section && !x.Warmup && x.Workload == workload && x.Family == family
                                                     && x.Contender == contender && x.Phase.Contains(": "))
            .Select(x => x.Phase).Distinct().ToList();
        return string.Join("; ", phases.Select(p =>
        {
            var s = results.Summarize(SuiteBenchmark.Section, workload, family, contender, p)!;
            return $"{p} {Format.Seconds(s.Median)}";
        }));
    }

    private static string Med(Summary? s) => s is null ? "—" : Format.Seconds(s.Median);
    private static string Spread(Summary? s) => s is null ? "" : s.Count == 1 ? "(n=1)" : $"{Format.Seconds(s.Min)}–{Format.Seconds(s.Max)}";
    private static string RatioOf(Summary? s, Summary? plain) => s is null || plain is null ? "" : Format.Ratio(s.Median / plain.Median);
    private static string OneLine(string s) => s.Split('\n')[0] + (s.Contains('\n') ? " (details in the console output)" : "");

    /// <summary>
    /// Busy = other work competed: the load before the benchmark started anything was above half the cores, or at some
    /// point above twice the cores (the benchmark's own work accounts for up to about one load unit per core).
    /// </summary>
    private static bool IsBusy(RunInfo run)
    {
        static double OneMinute(string load) => double.TryParse(load.Split(' ')[0], CultureInfo.InvariantCulture, out double v) ? v : 0;
        return (run.LoadSamples.Count > 0 && OneMinute(run.LoadSamples[0].Load) > run.Machine.Cores * 0.5)
               || run.LoadSamples.Any(l => OneMinute(l.Load) > run.Machine.Cores * 2);
    }

    // ---------------- charts ----------------

    private static string CoreSvg(RunInfo run, Results results)
    {
        var groups = new List<BarGroup>();
        foreach (var workload in new[] { run.CoreMemoryWorkload, run.CoreTreeWorkload })
        {
            var rows = CoreRows(run).Select(r => new BarRow(r.Contender,
                    [results.Summarize(CoreBenchmark.Section, workload, CoreBenchmark.Family, r.Contender, r.Phase)],
                    IsSealpointStep(r.Contender), CoreColor(r.Contender)))
                .Where(r => r.Values[0] is not null).ToList();
            if (rows.Count > 0) groups.Add(new BarGroup(workload, rows));
        }
        return SvgChart.Render("Issue #2: sealing a CRIU dump vs CRIU's own dump and per-file tools",
            $"{run.Machine.Cpu}, {run.Machine.Cores} cores, {run.Started:yyyy-MM-dd}; dumps on {run.Machine.WorkDirFileSystem}; grey CRIU, blue Sealpoint, orange per-file tools",
            ["median time"], groups);
    }

    private static bool IsSealpointStep(string step) => step is CoreBenchmark.SealInPlace or CoreBenchmark.SealDirectory
        or CoreBenchmark.OpenLibrary or CoreBenchmark.SealCli or CoreBenchmark.OpenCli;

    /// <summary>Grey for CRIU itself, blue for Sealpoint, orange for the per-file baselines: the groups read at a glance.</summary>
    private static string CoreColor(string step) => IsSealpointStep(step) ? "#3b6fb6" : step.StartsWith("criu") ? "#8c8c8c" : "#e08a2e";

    private static string SuiteSvg(RunInfo run, Results results)
    {
        var groups = new List<BarGroup>();
        foreach (var workload in run.SuiteWorkloads)
            foreach (var (family, contenders) in run.Families)
            {
                var rows = contenders.Select(c => new BarRow(c.Name,
                        [results.Summarize(SuiteBenchmark.Section, workload, family, c.Name, "checkpoint"),
                         results.Summarize(SuiteBenchmark.Section, workload, family, c.Name, "restore")],
                        c.Kind == ContenderKind.Sealpoint))
                    .Where(r => r.Values.Any(v => v is not null)).ToList();
                if (rows.Count > 0) groups.Add(new BarGroup($"{workload} — {family}", rows));
            }
        return SvgChart.Render("Issue #6: checkpoint and restore, Sealpoint vs plain and per-file post-dump baselines",
            $"{run.Machine.Cpu}, {run.Machine.Cores} cores, {run.Started:yyyy-MM-dd}; dumps on {run.Machine.WorkDirFileSystem}",
            ["checkpoint (encrypted, complete)", "restore (decrypt + restore)"], groups);
    }

    // ---------------- raw data ----------------

    private static string Csv(Results results)
    {
        var csv = new StringBuilder("section,workload,family,contender,phase,repetition,warmup,seconds,bytes,files,at,note\n");
        foreach (var x in results.Measurements)
            csv.AppendLine(string.Join(',', Q(x.Section), Q(x.Workload), Q(x.Family), Q(x.Contender), Q(x.Phase), x.Repetition,
                x.Warmup ? "true" : "false", x.Seconds.ToString("0.000000", CultureInfo.InvariantCulture), x.Bytes, x.Files,
                x.At.ToString("o"), Q(x.Note ?? "")));
        return csv.ToString();
    }

    private static string Q(string s) => s.IndexOfAny([',', '"', '\n']) < 0 ? s : "\"" + s.Replace("\"", "\"\"") + "\"";

    private static string Json(RunInfo run, Results results)
    {
        var doc = new
        {
            run.CommandLine, run.Started, run.Finished, run.Machine, run.Programs, run.LoadBefore, run.LoadAfter,
            LoadSamples = run.LoadSamples.Select(l => new { l.At, l.Where, l.Load }),
            Options = new
            {
                run.Options.Quick, run.Options.Sizes, run.Options.Trees, run.Options.Reps, run.Options.CoreReps, run.Options.CoreSize,
                run.Options.CoreTree, run.Options.Warmup, run.Options.WorkDir, Skip = run.Options.Skip.Order().ToList(), run.Options.GpgMaxTree,
                run.Options.SlowSeconds, run.Options.PassThroughCalls,
            },
            Summaries = results.Measurements.Where(x => !x.Warmup).GroupBy(x => (x.Section, x.Workload, x.Family, x.Contender, x.Phase))
                .Select(g => new { g.Key.Section, g.Key.Workload, g.Key.Family, g.Key.Contender, g.Key.Phase, Summary = Summary.Of(g.Select(x => x.Seconds)) }),
            results.Targets, results.Facts, results.Skips, results.Failures, results.Measurements,
        };
        return JsonSerializer.Serialize(doc, new JsonSerializerOptions
        {
            WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
            Converters = { new JsonStringEnumConverter() }, NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        });
    }
}
