namespace Sealpoint.Bench;

/// <summary>Command-line options. Defaults are the full suite of issue #6 plus the core benchmark of issue #2.</summary>
public sealed record BenchOptions
{
    public bool Quick { get; init; }
    /// <summary>memhog sizes (MiB) of the full suite.</summary>
    public IReadOnlyList<int> Sizes { get; init; } = [256, 1024, 4096];
    /// <summary>proctree sizes (processes) of the full suite.</summary>
    public IReadOnlyList<int> Trees { get; init; } = [100, 500];
    /// <summary>Counted repetitions per contender in the suite (a warm-up comes on top).</summary>
    public int Reps { get; init; } = 3;
    /// <summary>Counted repetitions in the core section (#2), which is cheaper per repetition.</summary>
    public int CoreReps { get; init; } = 5;
    public int CoreSize { get; init; } = 1024;
    public int CoreTree { get; init; } = 100;
    public bool Warmup { get; init; } = true;
    public string OutDir { get; init; } = "bench-report";
    /// <summary>Where dumps go; default /dev/shm (tmpfs) so a disk's speed does not decide the figures.</summary>
    public string WorkDir { get; init; } = "/dev/shm";
    /// <summary>Contenders or sections not to run: gpg, openssl, age, runtime, stream, oci, core, suite, passthrough, process, container.</summary>
    public IReadOnlySet<string> Skip { get; init; } = new HashSet<string>();
    /// <summary>gpg runs on process trees up to this many processes (it costs ~0.25 s per file and direction).</summary>
    public int GpgMaxTree { get; init; } = 100;
    /// <summary>A contender whose first counted run takes longer than this runs only once more is not repeated.</summary>
    public double SlowSeconds { get; init; } = 60;
    public int PassThroughCalls { get; init; } = 200;
    /// <summary>memhog size (MiB) whose full and incremental registry pushes are counted.</summary>
    public int PushSize { get; init; } = 256;
    /// <summary>"published": ReadyToRun publish of this source (what install.sh installs); "build": the Release build (JIT).</summary>
    public string Programs { get; init; } = "published";
    /// <summary>gpg with --compress-algo none instead of its default zlib (random memory does not compress; zlib then
    /// dominates gpg's time on the memory workloads).</summary>
    public bool GpgNoCompress { get; init; }

    public bool Skips(string what) => Skip.Contains(what);

    public static readonly string[] SkipNames = ["gpg", "openssl", "age", "runtime", "stream", "oci", "core", "suite", "passthrough", "process", "container"];

    public const string Usage = """
        sealpoint-bench — times checkpoint encryption on real CRIU and runc against openssl/gpg/age post-dump scripts.

        Usage: sealpoint-bench [--quick] [--sizes 256,1024,4096] [--trees 100,500] [--reps N] [--core-reps N]
                               [--out DIR] [--work-dir DIR] [--skip gpg,age,...] [--gpg-max-tree N] [--no-warmup]
                               [--passthrough-calls N]

          --quick            tiny run to prove the benchmark works (32 MiB, 10 processes, 1 repetition, no warm-up,
                             gpg on the memory workload only,
                             programs from the Release build)
          --sizes LIST       memhog sizes in MiB for the suite (default 256,1024,4096)
          --trees LIST       proctree sizes for the suite (default 100,500)
          --reps N           counted repetitions per suite contender (default 3; a warm-up runs first)
          --core-reps N      counted repetitions in the core section (default 5)
          --core-size MIB    memhog size of the core section (default 1024)
          --core-tree N      proctree size of the core section (default 100)
          --out DIR          report folder (default ./bench-report): report.md, core.svg, suite.svg, measurements.csv, results.json
          --work-dir DIR     where dumps are written (default /dev/shm, a tmpfs)
          --skip LIST        leave out: gpg, openssl, age, runtime, stream, oci, core, suite, passthrough, process, container
          --gpg-no-compress  gpg with --compress-algo none (default: gpg's own default, zlib)
          --gpg-max-tree N   run gpg on process trees of at most N processes (default 100; ~0.25 s per file each way)
          --slow-seconds S   a contender whose first counted run exceeds S seconds is not repeated (default 60)
          --no-warmup        no warm-up repetition
          --passthrough-calls N  calls of `state` per runtime for the pass-through cost (default 200)
          --push-size MIB    memhog size for the full and incremental registry push (default 256)
          --programs HOW     published (default: ReadyToRun publish of this source, as install.sh installs it)
                             or build (the repository's Release build, JIT; default with --quick)

        Needs root, packaging/install.sh (CRIU 4.x, runc, openssl, gpg, age, workloads) and free memory
        (about 3.5x the largest memhog size). Everything it creates lives under --work-dir and is removed at the end,
        also on Ctrl-C.
        """;

    public static BenchOptions Parse(string[] args)
    {
        var o = new BenchOptions();
        bool programsGiven = false, pushGiven = false, gpgGiven = false, repsGiven = false, coreRepsGiven = false, sizesGiven = false, treesGiven = false, warmupGiven = false;
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            string Value() => i + 1 < args.Length ? args[++i] : throw new UsageException($"{a} needs a value");
            switch (a)
            {
                case "--quick": o = o with { Quick = true }; break;
                case "--sizes": o = o with { Sizes = IntList(Value(), a) }; sizesGiven = true; break;
                case "--trees": o = o with { Trees = IntList(Value(), a) }; treesGiven = true; break;
                case "--reps": o = o with { Reps = PositiveInt(Value(), a) }; repsGiven = true; break;
                case "--core-reps": o = o with { CoreReps = PositiveInt(Value(), a) }; coreRepsGiven = true; break;
                case "--core-size": o = o with { CoreSize = PositiveInt(Value(), a) }; break;
                case "--core-tree": o = o with { CoreTree = PositiveInt(Value(), a) }; break;
                case "--out": o = o with { OutDir = Value() }; break;
                case "--work-dir": o = o with { WorkDir = Value() }; break;
                case "--skip":
                    var names = Value().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                    foreach (var n in names)
                        if (!SkipNames.Contains(n)) throw new UsageException($"--skip {n}: unknown; use any of {string.Join(", ", SkipNames)}");
                    o = o with { Skip = new HashSet<string>(o.Skip.Concat(names)) };
                    break;
                case "--gpg-max-tree": o = o with { GpgMaxTree = PositiveInt(Value(), a) }; gpgGiven = true; break;
                case "--slow-seconds": o = o with { SlowSeconds = PositiveInt(Value(), a) }; break;
                case "--no-warmup": o = o with { Warmup = false }; warmupGiven = true; break;
                case "--passthrough-calls": o = o with { PassThroughCalls = PositiveInt(Value(), a) }; break;
                case "--programs":
                    string how = Value();
                    if (how is not ("published" or "build")) throw new UsageException($"--programs {how}: use published or build");
                    o = o with { Programs = how }; programsGiven = true; break;
                case "--gpg-no-compress": o = o with { GpgNoCompress = true }; break;
                case "--push-size": o = o with { PushSize = PositiveInt(Value(), a) }; pushGiven = true; break;
                case "-h" or "--help": throw new HelpRequested();
                default: throw new UsageException($"unknown argument '{a}'");
            }
        }
        if (o.Quick)
        {
            // Quick proves every code path on tiny inputs; explicit options still win.
            o = o with
            {
                Sizes = sizesGiven ? o.Sizes : [32],
                Trees = treesGiven ? o.Trees : [10],
                Reps = repsGiven ? o.Reps : 1,
                CoreReps = coreRepsGiven ? o.CoreReps : 1,
                CoreSize = 32,
                CoreTree = 10,
                Warmup = warmupGiven ? o.Warmup : false,
                PassThroughCalls = 20,
                PushSize = pushGiven ? o.PushSize : 32,
                // Publishing takes a minute; the quick run proves the benchmark, not the start-up of the programs.
                Programs = programsGiven ? o.Programs : "build",
                // gpg costs ~0.1-0.25 s per file and direction: on the quick memhog (about 20 files) it proves every gpg
                // path (hook, script, decrypt); on trees it would double the quick run's time.
                GpgMaxTree = gpgGiven ? o.GpgMaxTree : 0,
            };
        }
        return o;
    }

    private static int PositiveInt(string text, string option) =>
        int.TryParse(text, out int v) && v > 0 ? v : throw new UsageException($"{option} needs a positive whole number, not '{text}'");

    private static IReadOnlyList<int> IntList(string text, string option) =>
        text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(t => PositiveInt(t, option)).ToList();
}

public sealed class UsageException(string message) : Exception(message);
public sealed class HelpRequested() : Exception("help");
