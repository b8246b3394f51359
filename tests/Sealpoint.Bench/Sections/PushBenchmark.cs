using Sealpoint.Bench.Measuring;
using Sealpoint.Bench.Running;

namespace Sealpoint.Bench.Sections;

/// <summary>Bytes uploaded by a full and by an incremental push of a sealed checkpoint to a registry.</summary>
public static class PushBenchmark
{
    public const string Section = "oci";

    public static void Run(BenchOptions options, Scratch scratch, Results results, SealpointSetup sealpoint)
    {
        results.AddSkip(new Skip(Section, "-", "registry push bytes (full and incremental)",
            "not available in this run: the oci branch (pack/push/pull) is not merged into the benchmark's branch"));
    }
}
