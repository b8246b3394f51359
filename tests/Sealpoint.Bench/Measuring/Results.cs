namespace Sealpoint.Bench.Measuring;

/// <summary>Everything one run measured, in the order it happened. Thread-safe for the cleanup path only by being append-only.</summary>
public sealed class Results
{
    private readonly object _gate = new();
    public List<Measurement> Measurements { get; } = [];
    public List<Skip> Skips { get; } = [];
    public List<TargetResult> Targets { get; } = [];
    public List<Fact> Facts { get; } = [];
    /// <summary>Failures that stopped a workload or contender part-way; the report lists them.</summary>
    public List<string> Failures { get; } = [];

    public void Add(Measurement m)
    {
        lock (_gate) Measurements.Add(m);
        string warm = m.Warmup ? " (warm-up, not counted)" : "";
        Console.WriteLine($"  {m.Workload,-14} {m.Family,-9} {m.Contender,-24} {m.Phase,-10} rep {m.Repetition}: {Format.Seconds(m.Seconds),10}{warm}");
    }

    public void AddSkip(Skip s)
    {
        lock (_gate)
        {
            if (Skips.Contains(s)) return;
            Skips.Add(s);
        }
        Console.WriteLine($"  SKIPPED {s.Workload} {s.Contender}: {s.Reason}");
    }

    public void AddTarget(TargetResult t)
    {
        lock (_gate) Targets.Add(t);
        Console.WriteLine($"  TARGET {t.Name}: {t.Verdict} ({t.Measured}; required {t.Requirement}){(t.Reason is null ? "" : " — " + t.Reason)}");
    }

    public void AddFact(Fact f)
    {
        lock (_gate) Facts.Add(f);
        Console.WriteLine($"  {f.Name}: {f.Value}{(f.Note is null ? "" : " — " + f.Note)}");
    }

    /// <summary>Drops every figure of a contender on a workload: after a failed round trip its figures are not trustworthy.</summary>
    public int Discard(string section, string workload, string family, string contender)
    {
        lock (_gate) return Measurements.RemoveAll(m => m.Section == section && m.Workload == workload && m.Family == family && m.Contender == contender);
    }

    public void AddFailure(string what)
    {
        lock (_gate) Failures.Add(what);
        Console.Error.WriteLine($"  FAILED: {what}");
    }

    /// <summary>Summary of the counted (non-warm-up) runs of one step, or null if it never ran.</summary>
    public Summary? Summarize(string section, string workload, string family, string contender, string phase) =>
        Summary.Of(Measurements.Where(m => !m.Warmup && m.Section == section && m.Workload == workload && m.Family == family
                                           && m.Contender == contender && m.Phase == phase).Select(m => m.Seconds));

    public Measurement? First(string section, string workload, string family, string contender, string phase) =>
        Measurements.FirstOrDefault(m => m.Section == section && m.Workload == workload && m.Family == family && m.Contender == contender && m.Phase == phase);
}

/// <summary>Number formatting shared by console, Markdown and SVG.</summary>
public static class Format
{
    public static string Seconds(double s) => s switch
    {
        < 0.001 => $"{s * 1e6:0} µs",
        < 1 => $"{s * 1000:0.#} ms",
        < 100 => $"{s:0.00} s",
        _ => $"{s:0} s",
    };

    public static string Ratio(double r) => r >= 100 ? $"{r:0}×" : r >= 10 ? $"{r:0.#}×" : $"{r:0.00}×";

    public static string Bytes(long b) => b switch
    {
        >= 1L << 30 => $"{b / (double)(1L << 30):0.00} GiB",
        >= 1L << 20 => $"{b / (double)(1L << 20):0.0} MiB",
        >= 1L << 10 => $"{b / 1024.0:0.0} KiB",
        _ => $"{b} B",
    };

    public static string Throughput(long bytes, double seconds) =>
        bytes <= 0 || seconds <= 0 ? "" : $"{bytes / seconds / 1e9:0.00} GB/s";
}
