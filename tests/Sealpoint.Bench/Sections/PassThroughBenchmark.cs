using Sealpoint.Bench.Measuring;
using Sealpoint.Bench.Running;
using Sealpoint.TestSupport;

namespace Sealpoint.Bench.Sections;

/// <summary>
/// What the Sealpoint runtime costs on calls it only passes to runc: `state ID` through sealpoint-runc against runc
/// itself, on the same running container, alternating in blocks so load drift hits both alike.
/// </summary>
public sealed class PassThroughBenchmark(BenchOptions options, Scratch scratch, Results results, string runtime)
{
    public const string Section = "passthrough";

    public void Run()
    {
        Console.WriteLine($"== runtime pass-through: `state` x {options.PassThroughCalls} through runc and through sealpoint-runc");
        using var container = scratch.Track(RuncBundle.Create(["/bin/sleep", "100000"], new RuncBundleOptions { InShm = true }), "delete pass-through container");
        container.Run();
        container.WaitForStatus("running");
        string runc = Tools.Require("runc");
        var direct = new List<double>();
        var wrapped = new List<double>();
        const int block = 10;
        // One untimed call each first: page cache and dynamic loading, as for every other warm-up.
        container.Runc(["state", container.Id]);
        container.Runtime(runtime, ["state", container.Id]);
        for (int done = 0; done < options.PassThroughCalls; done += block)
        {
            for (int i = 0; i < block; i++) direct.Add(container.Runc(["state", container.Id]).Elapsed.TotalSeconds);
            for (int i = 0; i < block; i++) wrapped.Add(container.Runtime(runtime, ["state", container.Id]).Elapsed.TotalSeconds);
        }
        Record("runc state", direct, runc);
        Record("sealpoint-runc state", wrapped, runtime);
        double overhead = Summary.Of(wrapped)!.Median - Summary.Of(direct)!.Median;
        results.AddFact(new Fact(Section, "pass-through overhead per call (median difference)", Format.Seconds(Math.Max(0, overhead)) + (overhead < 0 ? " (below the noise: sealpoint-runc was not slower)" : ""),
            "wall time of one `state` call as seen by the caller, process start included"));
    }

    private void Record(string name, List<double> calls, string binary)
    {
        int rep = 1;
        foreach (var c in calls)
            results.Measurements.Add(new Measurement
            {
                Section = Section, Workload = "sleep container", Family = "container", Contender = name, Phase = "call", Repetition = rep++, Seconds = c,
            });
        var s = Summary.Of(calls)!;
        double p95 = Summary.Quantile(calls.Order().ToList(), 0.95);
        results.AddFact(new Fact(Section, $"`{name}` per call", $"mean {Format.Seconds(s.Mean)}, median {Format.Seconds(s.Median)}, p95 {Format.Seconds(p95)} ({calls.Count} calls)", binary));
    }
}
