namespace Sealpoint.Bench.Measuring;

/// <summary>Median and spread of repeated timings. Medians, not means: one slow repetition (a busy neighbour,
/// first touch of fresh memory in this VM) must not move the headline figure.</summary>
public sealed record Summary(int Count, double Median, double Min, double Max, double Q1, double Q3, double Mean)
{
    public static Summary? Of(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0) return null;
        return new Summary(sorted.Length, Quantile(sorted, 0.5), sorted[0], sorted[^1], Quantile(sorted, 0.25), Quantile(sorted, 0.75), sorted.Average());
    }

    /// <summary>Linear interpolation between closest ranks (type 7, as numpy and R default).</summary>
    public static double Quantile(IReadOnlyList<double> sorted, double q)
    {
        if (sorted.Count == 1) return sorted[0];
        double position = q * (sorted.Count - 1);
        int lower = (int)Math.Floor(position);
        int upper = Math.Min(lower + 1, sorted.Count - 1);
        return sorted[lower] + (sorted[upper] - sorted[lower]) * (position - lower);
    }
}
