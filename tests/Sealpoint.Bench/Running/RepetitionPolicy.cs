using Sealpoint.Bench.Measuring;

namespace Sealpoint.Bench.Running;

/// <summary>
/// Which contender runs in which repetition. gpg costs ~0.25 s per file and direction (its iterated S2K key
/// derivation runs once per file), so on a tree of 700 files one run takes minutes: it sits out the warm-up (its
/// cost is key derivation, not first touch of memory), and any contender whose first counted run exceeds
/// --slow-seconds is not repeated. Both are recorded as skips with the reason, so the report shows n=1 honestly.
/// </summary>
public sealed class RepetitionPolicy(BenchOptions options, Results results, string section)
{
    private readonly Dictionary<(string, string, string), double> _firstCounted = [];

    public bool ShouldRun(string workload, string family, string contender, int repetition, bool slowByNature)
    {
        if (repetition == 0 && slowByNature)
        {
            results.AddSkip(new Skip(section, workload, contender + $" ({family}, warm-up)",
                "sits out the warm-up: its cost is per-file key derivation, not first touch of memory"));
            return false;
        }
        if (repetition > 1 && _firstCounted.TryGetValue((workload, family, contender), out double first) && first > options.SlowSeconds)
        {
            results.AddSkip(new Skip(section, workload, contender + $" ({family}, repetitions 2+)",
                $"run once only: its first counted run took {Format.Seconds(first)} (> --slow-seconds {options.SlowSeconds:0})"));
            return false;
        }
        return true;
    }

    /// <summary>Records the duration of a whole contender run (all its phases) for the slow rule.</summary>
    public void Ran(string workload, string family, string contender, int repetition, double seconds)
    {
        if (repetition == 1) _firstCounted[(workload, family, contender)] = seconds;
    }
}
