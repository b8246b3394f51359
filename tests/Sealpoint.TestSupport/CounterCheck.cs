namespace Sealpoint.TestSupport;

/// <summary>Proof that a restored workload continued rather than restarted: its counter keeps rising from the checkpointed value.</summary>
public static class CounterCheck
{
    public static void Continues(Func<long?> read, long atCheckpoint, Func<string> context, TimeSpan? timeout = null)
    {
        var seen = new List<long>();
        Poll.Until(() =>
        {
            if (read() is { } v) seen.Add(v);
            return seen.Count > 0 && seen[^1] >= atCheckpoint + 5;
        }, timeout ?? TimeSpan.FromSeconds(20),
            () => $"the counter to pass {atCheckpoint + 5} after restore; seen {string.Join(",", seen.Distinct().TakeLast(10))}{context()}",
            TimeSpan.FromMilliseconds(10));
        if (seen.Any(v => v < atCheckpoint))
            throw new InvalidOperationException($"counter went below the checkpointed {atCheckpoint} after restore (a restart, not a restore): {string.Join(",", seen.Distinct())}");
        if (!seen.SequenceEqual(seen.Order()))
            throw new InvalidOperationException($"counter went backwards after restore: {string.Join(",", seen.Distinct())}");
    }
}
