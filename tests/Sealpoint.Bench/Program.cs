using System.Runtime.InteropServices;
using Sealpoint.Bench;
using Sealpoint.Bench.Measuring;
using Sealpoint.Bench.Reporting;
using Sealpoint.Bench.Running;
using Sealpoint.Bench.Sections;
using Sealpoint.TestSupport;

// sealpoint-bench: see BenchOptions.Usage. Exit codes: 0 report written (targets may be unmet: that is a finding,
// not a failure), 1 the benchmark itself failed, 2 usage.
// The in-process parts (the core section's sealing) run on the same OpenSSL as the programs.
if (Sealpoint.Core.Crypto.OpenSslLibrary.Select().Warning is { } opensslWarning) Console.Error.WriteLine($"sealpoint-bench: warning: {opensslWarning}");
BenchOptions options;
try { options = BenchOptions.Parse(args); }
catch (HelpRequested) { Console.Write(BenchOptions.Usage); return 0; }
catch (UsageException e) { Console.Error.WriteLine($"sealpoint-bench: {e.Message}. Fix: see --help"); return 2; }

try { Tools.RequireRoot(); }
catch (TestEnvironmentException e) { Console.Error.WriteLine($"sealpoint-bench: {e.Message}"); return 1; }

using var scratch = Scratch.Create(options.WorkDir);
// Ctrl-C, kill, a closed terminal: undo everything (workloads, containers, gigabytes on tmpfs) before exiting.
var signals = new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM, PosixSignal.SIGHUP }.Select(s => PosixSignalRegistration.Create(s, ctx =>
{
    ctx.Cancel = true;
    Console.Error.WriteLine($"sealpoint-bench: {ctx.Signal}, cleaning up {scratch.Root} ...");
    scratch.Dispose();
    Environment.Exit(130);
})).ToList();

var started = DateTimeOffset.Now;
var results = new Results();
void SampleLoad(string where) => LoadLog.Sample(where);
SampleLoad("start");
string loadBefore = MachineInfo.LoadAverage();
var machine = MachineInfo.Collect(options.WorkDir);
Console.WriteLine($"sealpoint-bench: {machine.Cpu}, {machine.Cores} cores, kernel {machine.Kernel}, {machine.Criu}; load {loadBefore}");
Console.WriteLine($"work folder {scratch.Root} ({machine.WorkDirFileSystem}), report into {Path.GetFullPath(options.OutDir)}");

try
{
    Criu.Check();
    var sealpoint = SealpointSetup.Create(scratch.NewDir("pki"));
    var baselines = new List<BaselineTool>();
    foreach (var name in BaselineTool.Names)
    {
        if (options.Skips(name)) results.AddSkip(new Skip("all", "all", name, $"--skip {name}"));
        else baselines.Add(BaselineTool.Create(name, scratch.NewDir($"baseline-{name}"), scratch, options.GpgNoCompress));
    }
    var toolsByName = baselines.ToDictionary(b => b.Name);
    string logs = scratch.NewDir("criu-logs");

    // Contenders per family; an unavailable one is a reported skip, never a silent gap.
    var programs = (options.Programs == "build" ? Programs.FromBuild() : Programs.Publish(scratch.NewDir("programs"))).WithOpenSsl();
    SealpointSetup.Cli = programs.Cli;
    Console.WriteLine($"programs: {programs.Description}");
    string? runtime = programs.RuntimeLauncher, runtimeMissing = programs.RuntimeMissing;
    if (runtime is not null) RuntimeContender.Configure(sealpoint, scratch);
    var families = new Dictionary<string, IReadOnlyList<Contender>>();
    if (!options.Skips("process"))
    {
        var list = new List<Contender> { new PlainCriu(logs) };
        if (!options.Skips("stream")) list.Add(new StreamingDump(sealpoint, logs));
        else results.AddSkip(new Skip(SuiteBenchmark.Section, "all", "sealpoint dump (stream)", "--skip stream"));
        list.AddRange(baselines.Select(b => new PostDumpScript(b, logs)));
        families["process"] = list;
    }
    if (!options.Skips("container"))
    {
        var list = new List<Contender> { new PlainRunc() };
        if (options.Skips("runtime")) results.AddSkip(new Skip(SuiteBenchmark.Section, "all", "sealpoint-runc", "--skip runtime"));
        else if (runtime is null) results.AddSkip(new Skip(SuiteBenchmark.Section, "all", "sealpoint-runc", $"not available in this run: {runtimeMissing}"));
        else list.Add(new RuntimeContender(runtime));
        list.AddRange(baselines.Select(b => new RuncThenScript(b)));
        families["container"] = list;
    }

    var core = new CoreBenchmark(options, scratch, results, sealpoint, toolsByName);
    if (options.Skips("core")) results.AddSkip(new Skip(CoreBenchmark.Section, "all", "core section", "--skip core"));
    else { SampleLoad("core"); core.Run(); }

    var suite = new SuiteBenchmark(options, scratch, results, families);
    if (options.Skips("suite")) results.AddSkip(new Skip(SuiteBenchmark.Section, "all", "suite section", "--skip suite"));
    else { SampleLoad("suite"); suite.Run(); }

    if (options.Skips("passthrough")) results.AddSkip(new Skip(PassThroughBenchmark.Section, "-", "pass-through cost", "--skip passthrough"));
    else if (runtime is null) results.AddSkip(new Skip(PassThroughBenchmark.Section, "-", "pass-through cost", $"not available in this run: {runtimeMissing}"));
    else
    {
        SampleLoad("passthrough");
        try { new PassThroughBenchmark(options, scratch, results, runtime).Run(); }
        catch (Exception e) { results.AddFailure($"pass-through: {e.Message}"); }
    }

    if (options.Skips("oci")) results.AddSkip(new Skip("oci", "-", "registry push bytes", "--skip oci"));
    else
    {
        SampleLoad("push");
        try { new PushBenchmark(options, scratch, results, sealpoint).Run(); }
        catch (Exception e) { results.AddFailure($"registry push: {e.Message}"); }
    }

    SampleLoad("end");
    var run = new RunInfo(
        "sealpoint-bench " + string.Join(' ', args), started, DateTimeOffset.Now, machine, loadBefore, MachineInfo.LoadAverage(), options,
        CoreSteps(sealpoint, baselines), programs.Description, core.MemoryWorkload, core.TreeWorkload, suite.Workloads.Select(w => w.Name).ToList(), families, baselines, LoadLog.Samples);
    ReportWriter.Write(options.OutDir, run, results);
    Console.WriteLine();
    Console.WriteLine(ReportWriter.Markdown(run, results, results.Measurements.Any(m => m.Section == CoreBenchmark.Section),
        results.Measurements.Any(m => m.Section == SuiteBenchmark.Section)));
    Console.WriteLine($"report written to {Path.GetFullPath(options.OutDir)}/{ReportWriter.ReportFile}");
    return 0;
}
catch (Exception e)
{
    Console.Error.WriteLine($"sealpoint-bench failed: {e}");
    return 1;
}
finally
{
    scratch.Dispose();
    foreach (var s in signals) s.Dispose();
}

static IReadOnlyList<(string, string)> CoreSteps(SealpointSetup sp, IReadOnlyList<BaselineTool> baselines) =>
[
    (CoreBenchmark.CriuDump, "`criu dump -t PID -D DIR -o LOG` (wall time of the criu process)"),
    (CoreBenchmark.SealInPlace, "`CheckpointSealer.SealFilesInPlace(DIR, options)` in-process (page files encrypted where they are), Sync=false"),
    (CoreBenchmark.SealDirectory, "`CheckpointSealer.SealDirectory(DIR, NEW, options)` in-process, Sync=false"),
    (CoreBenchmark.OpenLibrary, "`SealedCheckpoint.Open(NEW, identity).DecryptTo(OUT)` in-process (verifies every file, then decrypts)"),
    (CoreBenchmark.SealCli, $"`sealpoint seal DIR --out NEW -r {SealpointSetup.RecipientName} --no-sync` (wall time, .NET start-up included)"),
    (CoreBenchmark.OpenCli, "`sealpoint open NEW --key KEY --out OUT` (wall time, .NET start-up included)"),
    (CoreBenchmark.CriuRestore, "`criu restore -D OUT -d -o LOG` from the opened checkpoint (proves the round trip)"),
    .. baselines.Select(b => (b.Name, $"`bash post-dump-{b.Name}.sh encrypt-to DIR NEW`: per file `{b.EncryptCommand}`")),
];
